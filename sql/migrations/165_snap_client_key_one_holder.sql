-- A SNAP X-CLIENT-KEY names one party: the token endpoint tells an acquirer from a partner by it
-- (core/acquirers/snap_in.py). Both registries check the other one first (a clear answer); this
-- trigger holds the rule when an acquirer and a partner with one key are registered at once: the
-- second waits on the key's lock, then sees the first and fails as a unique violation.
CREATE FUNCTION snap_client_key_one_holder() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    held_key text;
    taken boolean;
BEGIN
    IF TG_TABLE_NAME = 'partners' THEN
        held_key := NEW.client_key;
    ELSIF NEW.protocol = 'snap' THEN
        held_key := NEW.settings ->> 'client_key';
    END IF;
    IF held_key IS NULL THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('snap_client_key'), hashtext(held_key));
    IF TG_TABLE_NAME = 'partners' THEN
        taken := EXISTS (SELECT 1 FROM acquirers WHERE protocol = 'snap' AND settings ->> 'client_key' = held_key);
    ELSE
        taken := EXISTS (SELECT 1 FROM partners WHERE client_key = held_key);
    END IF;
    IF taken THEN
        RAISE unique_violation USING MESSAGE = 'client key ' || held_key || ' names another party',
            CONSTRAINT = 'snap_client_key_one_holder';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER snap_client_key_one_holder BEFORE INSERT OR UPDATE ON acquirers
    FOR EACH ROW EXECUTE FUNCTION snap_client_key_one_holder();
CREATE TRIGGER snap_client_key_one_holder BEFORE INSERT OR UPDATE OF client_key ON partners
    FOR EACH ROW EXECUTE FUNCTION snap_client_key_one_holder();
