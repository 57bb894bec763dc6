"""TimescaleDB storage of the events: rows from events (rows), the batch writer the sink uses
(writer), and retention (retention). The schema itself is in pantau/migrations/0001-0099."""
