-- SCIM groups and their members (users of the same directory).
CREATE TABLE directory_groups (
    id               BLOB PRIMARY KEY NOT NULL,
    directory_id     BLOB NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    organization_id  BLOB NOT NULL,
    display_name     TEXT NOT NULL,
    display_name_key TEXT NOT NULL,
    external_id      TEXT,
    resource         TEXT NOT NULL,
    version          BIGINT NOT NULL,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX directory_groups_name ON directory_groups (directory_id, display_name_key);
CREATE INDEX directory_groups_external_id ON directory_groups (directory_id, external_id);

CREATE TABLE directory_group_members (
    group_id     BLOB NOT NULL REFERENCES directory_groups (id) ON DELETE CASCADE,
    user_id      BLOB NOT NULL REFERENCES directory_users (id) ON DELETE CASCADE,
    directory_id BLOB NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX directory_group_members_user ON directory_group_members (user_id);
