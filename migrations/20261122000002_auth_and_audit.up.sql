-- Secrets live outside the EAV tables so that no entity read (API, entity browser, graph
-- projection) can ever return them.
CREATE TABLE user_credentials (
    user_id       BIGINT      PRIMARY KEY REFERENCES entities (id) ON DELETE CASCADE,
    password_hash TEXT        NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Bearer tokens for the JSON API; only a SHA-256 of the token is stored.
CREATE TABLE api_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      BIGINT      NOT NULL REFERENCES entities (id) ON DELETE CASCADE,
    name         TEXT        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    token_hash   BYTEA       NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);
CREATE INDEX api_tokens_by_user ON api_tokens (user_id);

-- Layout expected by tower-sessions' PostgresStore (configured for public.sessions).
CREATE TABLE sessions (
    id          TEXT        PRIMARY KEY NOT NULL,
    data        BYTEA       NOT NULL,
    expiry_date TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_by_expiry ON sessions (expiry_date);

-- Login attempts back the rate limiter; shared by all replicas.
CREATE TABLE login_attempts (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attempted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    username     TEXT        NOT NULL,
    client_ip    TEXT        NOT NULL,
    succeeded    BOOLEAN     NOT NULL
);
CREATE INDEX login_attempts_by_username ON login_attempts (lower(username), attempted_at);
CREATE INDEX login_attempts_by_ip ON login_attempts (client_ip, attempted_at);

CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_id    BIGINT      REFERENCES entities (id) ON DELETE SET NULL,
    actor_name  TEXT        NOT NULL,
    action      TEXT        NOT NULL,
    target_type TEXT,
    target_id   BIGINT,
    details     JSONB       NOT NULL DEFAULT '{}'::jsonb,
    request_id  TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (occurred_at DESC, id DESC);
