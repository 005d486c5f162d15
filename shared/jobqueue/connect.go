package jobqueue

import (
	"context"
	"fmt"
	"log/slog"
	neturl "net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Connect connects to NATS at url (with the credentials file creds, if set) and keeps
// reconnecting for ever after a connection loss, logging each change.
func Connect(url, creds, name string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
		}),
	}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("jobqueue: connect to NATS at %s: %w", url, err)
	}
	return nc, nil
}

// Open connects to NATS (see [Connect]) and ensures the topology c, returning the connection,
// its JetStream context and the topology's handles. The caller closes the connection.
func Open(ctx context.Context, url, creds, name string, c Config, log *slog.Logger) (*nats.Conn, jetstream.JetStream, *Topology, error) {
	nc, err := Connect(url, creds, name, log)
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("jobqueue: jetstream: %w", err)
	}
	top, err := Ensure(ctx, js, c)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	return nc, js, top, nil
}

// CheckURL validates NATS_URL: one or more comma-separated URLs, each with a scheme and host.
func CheckURL(s string) error {
	for one := range strings.SplitSeq(s, ",") {
		u, err := neturl.Parse(strings.TrimSpace(one))
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("NATS_URL: %q is not a URL with a scheme and host (try nats://host:4222)", one)
		}
	}
	return nil
}
