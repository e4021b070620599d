#!/usr/bin/env bash
# First-boot setup for the postgres image (/docker-entrypoint-initdb.d): the owner role
# runs migrations and may create test databases; the application role may only connect.
set -euo pipefail

: "${DAYBREAK_OWNER_DB_PASSWORD:?set it}"
: "${DAYBREAK_APP_DB_PASSWORD:?set it}"

# psql's :'name' quoting keeps any password character safe.
psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname postgres \
  -v owner_pw="$DAYBREAK_OWNER_DB_PASSWORD" -v app_pw="$DAYBREAK_APP_DB_PASSWORD" <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE daybreak_owner LOGIN CREATEDB PASSWORD :'owner_pw';
CREATE ROLE daybreak_app LOGIN PASSWORD :'app_pw';
CREATE DATABASE daybreak OWNER daybreak_owner;
REVOKE ALL ON DATABASE daybreak FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE daybreak TO daybreak_app;
SQL
