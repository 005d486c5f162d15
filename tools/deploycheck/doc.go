// Package deploycheck holds the tests that read Quire's deployment files (docker-compose.yml and
// everything under deploy/) and check that they parse and that their pieces agree with each
// other and with the code: service names, ports, environment variables of DESIGN §8, worker
// pools covering every priority, KEDA triggers on the right streams, the NATS cluster
// configuration, and every metric name used by the Grafana dashboard and the alert rules.
// It has no code of its own.
package deploycheck
