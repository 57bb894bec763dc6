"""The stream processor: Faust agents over the event topics, detectors from pantau.detect, alerts out."""
