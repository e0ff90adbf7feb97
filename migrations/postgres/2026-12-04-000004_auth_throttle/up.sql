-- Failed OpenVPN user logins per (case-folded username, source address): transient state that
-- each hook process reads and writes (evon-domain's throttle.rs has the policy). Not part of
-- the hub's configuration: backups leave it out and writes to it do not move hub.generation.
CREATE TABLE auth_throttle (
    username TEXT NOT NULL,
    source TEXT NOT NULL,
    -- Attempts counted in the window that started at window_start.
    failures INTEGER NOT NULL,
    window_start TIMESTAMP NOT NULL,
    -- Locks set so far; the next lasts twice as long as the last.
    lockouts INTEGER NOT NULL,
    locked_until TIMESTAMP,
    last_attempt TIMESTAMP NOT NULL,
    PRIMARY KEY (username, source)
);
-- Forgetting pairs that have been quiet for long.
CREATE INDEX auth_throttle_last_attempt ON auth_throttle (last_attempt);
