package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

func init() {
	register(command{"health", "probe a running server's /health (for container health checks)", runHealth})
}

func runHealth(ctx context.Context, args []string) error {
	fs := newFlags("health")
	url := fs.String("url", "http://127.0.0.1:8000/health", "health endpoint to probe")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return fmt.Errorf("bad --url: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("server not reachable: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("server unhealthy: %s", resp.Status)
	}
	return nil
}
