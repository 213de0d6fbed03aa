-- Accounts: plans (entitlements as data), organisations and their contracts, users, sessions.

-- btree_gist lets one exclusion constraint forbid two overlapping contracts of one organisation.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE plans (
    id                              uuid PRIMARY KEY,
    code                            text NOT NULL UNIQUE CHECK (code ~ '^[a-z][a-z0-9_]{1,31}$'),
    name                            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    technical_support               boolean NOT NULL,
    emergency_priority              boolean NOT NULL,
    consultancy_meetings_per_month  integer NOT NULL DEFAULT 0 CHECK (consultancy_meetings_per_month >= 0),
    created_at                      timestamptz NOT NULL DEFAULT now(),
    updated_at                      timestamptz NOT NULL DEFAULT now()
);

-- Seeded defaults (DESIGN R2); admins may change them later.
INSERT INTO plans (id, code, name, technical_support, emergency_priority, consultancy_meetings_per_month) VALUES
    ('0190f1a0-0000-7000-8000-000000000001', 'essencial', 'Essencial', false, false, 0),
    ('0190f1a0-0000-7000-8000-000000000002', 'pro',       'Pro',       true,  false, 1),
    ('0190f1a0-0000-7000-8000-000000000003', 'premium',   'Premium',   true,  true,  2);

CREATE TABLE organizations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX organizations_name_key ON organizations (lower(name));

CREATE TABLE contracts (
    id               uuid PRIMARY KEY,
    organization_id  uuid NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    plan_id          uuid NOT NULL REFERENCES plans (id),
    starts_on        date NOT NULL,
    ends_on          date,            -- exclusive; NULL = open-ended
    -- Customers sign up with this code; stored in clear because admins hand it out and rotate it.
    signup_code      text NOT NULL UNIQUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT contracts_dates_check CHECK (ends_on IS NULL OR ends_on > starts_on),
    -- One contract in force per organisation at any date (DESIGN R1/R2), enforced by the database.
    CONSTRAINT contracts_no_overlap EXCLUDE USING gist (
        organization_id WITH =,
        daterange(starts_on, ends_on, '[)') WITH &&
    )
);
CREATE INDEX contracts_organization_idx ON contracts (organization_id, starts_on DESC);

CREATE TABLE users (
    id                 uuid PRIMARY KEY,
    email              text NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    password_hash      text NOT NULL,
    role               text NOT NULL CHECK (role IN ('customer', 'agent', 'admin')),
    organization_id    uuid REFERENCES organizations (id),
    locale             text NOT NULL DEFAULT 'pt-BR' CHECK (locale IN ('pt-BR', 'en')),
    phone              text CHECK (length(phone) <= 40),
    terms_version      text,
    terms_accepted_at  timestamptz,
    -- Bumped on password change/reset so every session issued before it dies.
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    disabled_at        timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_customer_has_organization CHECK ((role = 'customer') = (organization_id IS NOT NULL)),
    CONSTRAINT users_customer_accepted_terms CHECK (role <> 'customer' OR terms_accepted_at IS NOT NULL)
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_organization_idx ON users (organization_id) WHERE organization_id IS NOT NULL;
CREATE INDEX users_role_idx ON users (role, created_at, id);

-- Refresh tokens are opaque; only their SHA-256 is stored. Rotation links tokens of one login
-- into a family so that reuse of a spent token can revoke all of them.
CREATE TABLE refresh_tokens (
    id           uuid PRIMARY KEY,
    family_id    uuid NOT NULL,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

CREATE TABLE password_reset_tokens (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id);

-- Every e-mail is written here in the transaction that causes it (DESIGN §3.5); the worker
-- delivers it. The idempotency key makes a repeated cause a no-op instead of a second e-mail.
CREATE TABLE email_outbox (
    id               uuid PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    to_address       text NOT NULL,
    to_name          text,
    locale           text NOT NULL DEFAULT 'pt-BR',
    template         text NOT NULL,
    payload          jsonb NOT NULL DEFAULT '{}'::jsonb,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_outbox_due_idx ON email_outbox (next_attempt_at) WHERE status = 'pending';

-- Who read or changed personal data, and security-relevant account events (DESIGN R14).
CREATE TABLE audit_events (
    id            uuid PRIMARY KEY,
    occurred_at   timestamptz NOT NULL DEFAULT now(),
    actor_id      uuid,
    action        text NOT NULL,
    subject_type  text NOT NULL,
    subject_id    uuid,
    ip            text,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_events_subject_idx ON audit_events (subject_type, subject_id, occurred_at);
CREATE INDEX audit_events_time_idx ON audit_events (occurred_at, id);
