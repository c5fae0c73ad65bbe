-- How many outbox rows the planner expects for one device.
--
-- Counting a device's open downlinks (the HTTP heartbeat's answer, the
-- device list) goes through device_outbox_open. With few devices in the
-- table and one of them holding a large backlog (an offline soundbox at a
-- busy terminal), the sample says "few distinct devices", the planner
-- expects thousands of rows for any device, and scans the whole table once
-- per device counted: measured at 10 ms per device with 34,000 rows, every
-- heartbeat. A device has few open rows; say so (2% of the rows are
-- distinct devices, at least), so its rows are read through the index.
ALTER TABLE device_outbox ALTER COLUMN device_id SET (n_distinct = -0.02);
ANALYZE device_outbox;
