#!/usr/bin/env bash
# First-boot setup for the postgres image (/docker-entrypoint-initdb.d): the owner role runs
# migrations and may create test databases; each service's role may only connect (the
# migrations grant it its own schema). `daybreak_app` is the retired shared role the oldest
# revisions grant to: it may not log in, and revision 0006 revokes what it had.
set -euo pipefail

: "${DAYBREAK_OWNER_DB_PASSWORD:?set it}"
services=(ingest matcher notifier audit identity)
args=(-v owner_pw="$DAYBREAK_OWNER_DB_PASSWORD")
for svc in "${services[@]}"; do
  var="DAYBREAK_${svc^^}_DB_PASSWORD"
  : "${!var:?set $var}"
  args+=(-v "${svc}_pw=${!var}")
done

# psql's :'name' quoting keeps any password character safe.
{
  cat <<'SQL'
SET password_encryption = 'scram-sha-256';
CREATE ROLE daybreak_owner LOGIN CREATEDB PASSWORD :'owner_pw';
CREATE ROLE daybreak_app NOLOGIN;
CREATE DATABASE daybreak OWNER daybreak_owner;
REVOKE ALL ON DATABASE daybreak FROM PUBLIC;
GRANT daybreak_app TO daybreak_owner;
SQL
  for svc in "${services[@]}"; do
    cat <<SQL
CREATE ROLE daybreak_$svc LOGIN PASSWORD :'${svc}_pw';
GRANT CONNECT, TEMPORARY ON DATABASE daybreak TO daybreak_$svc;
GRANT daybreak_$svc TO daybreak_owner;
SQL
  done
} | psql -v ON_ERROR_STOP=1 -X -q --username "$POSTGRES_USER" --dbname postgres "${args[@]}"
