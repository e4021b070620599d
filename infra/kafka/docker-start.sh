#!/usr/bin/env bash
# The Kafka container's entrypoint in docker-compose.yml. The apache/kafka image formats its
# storage without SCRAM users, and with SASL/SCRAM on every client listener none could ever be
# added later: so format first, once, with the two super users (admin for setup, broker for
# the broker itself), then hand over to the image, which finds the storage formatted.
# The services' users, topics and ACLs come from the kafka-setup container.
set -euo pipefail

data=/var/lib/kafka/data
: "${DAYBREAK_ADMIN_KAFKA_PASSWORD:?}" "${DAYBREAK_BROKER_KAFKA_PASSWORD:?}"
umask 077
if [[ ! -f $data/meta.properties ]]; then
  props="$(mktemp)"
  cat >"$props" <<PROPS
process.roles=${KAFKA_PROCESS_ROLES}
node.id=${KAFKA_NODE_ID}
controller.quorum.voters=${KAFKA_CONTROLLER_QUORUM_VOTERS}
controller.listener.names=${KAFKA_CONTROLLER_LISTENER_NAMES}
listeners=${KAFKA_LISTENERS}
advertised.listeners=${KAFKA_ADVERTISED_LISTENERS}
inter.broker.listener.name=${KAFKA_INTER_BROKER_LISTENER_NAME}
listener.security.protocol.map=${KAFKA_LISTENER_SECURITY_PROTOCOL_MAP}
sasl.enabled.mechanisms=${KAFKA_SASL_ENABLED_MECHANISMS}
sasl.mechanism.inter.broker.protocol=${KAFKA_SASL_MECHANISM_INTER_BROKER_PROTOCOL}
sasl.mechanism.controller.protocol=${KAFKA_SASL_MECHANISM_CONTROLLER_PROTOCOL}
listener.name.controller.sasl.enabled.mechanisms=${KAFKA_LISTENER_NAME_CONTROLLER_SASL_ENABLED_MECHANISMS}
log.dirs=$data
PROPS
  # the passwords are on this command line inside the container only, once
  /opt/kafka/bin/kafka-storage.sh format -t "$CLUSTER_ID" -c "$props" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$DAYBREAK_ADMIN_KAFKA_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=broker,password=$DAYBREAK_BROKER_KAFKA_PASSWORD]"
  rm -f "$props"
fi
# for the health check (kafka-broker-api-versions.sh --command-config)
printf '%s\n' 'security.protocol=SASL_PLAINTEXT' 'sasl.mechanism=SCRAM-SHA-512' \
  "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$DAYBREAK_ADMIN_KAFKA_PASSWORD\";" \
  >/tmp/admin.properties
unset DAYBREAK_ADMIN_KAFKA_PASSWORD
exec /etc/kafka/docker/run
