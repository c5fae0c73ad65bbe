-- Settlement calendar (SPEC §15): every batch carries the date its money reaches
-- the merchant, T+SETTLEMENT_T_PLUS_DAYS working days after its cutoff's
-- Jakarta date. The rule is Python's (core/finance/calendar.py: weekends,
-- Indonesia's public holidays and cuti bersama from the `holidays` package, and
-- the dates below); the batch stores the answer it got when it was made.

-- Non-working days an admin adds (a bank closure, a cuti bersama decreed after
-- the package's release). Added only after today and after every batch's value
-- date, so no batch already made would have a different value date.
CREATE TABLE settlement_holidays (
    day date PRIMARY KEY,
    reason text NOT NULL,
    created_by text,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE settlement_batches ADD COLUMN value_date date;
-- Batches made before the calendar: the next weekday after the cutoff's Jakarta date
-- (T+1 without holidays; SQL has no holiday data, and their value is history by now).
UPDATE settlement_batches
SET value_date = (
    SELECT d::date
    FROM generate_series((cutoff AT TIME ZONE 'Asia/Jakarta')::date + 1,
                         (cutoff AT TIME ZONE 'Asia/Jakarta')::date + 7, interval '1 day') AS d
    WHERE extract(isodow FROM d) < 6
    ORDER BY d
    LIMIT 1
);
ALTER TABLE settlement_batches ALTER COLUMN value_date SET NOT NULL;
CREATE INDEX settlement_batches_value_date ON settlement_batches (value_date);
