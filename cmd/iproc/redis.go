package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisCheckTimeout bounds the start-up check of --redis.
const redisCheckTimeout = 3 * time.Second

// checkRedis pings the Redis of rawURL once. Its error names the setting
// and the host, never the URL (which may hold a password).
func checkRedis(rawURL string) error {
	host := "?"
	if u, err := url.Parse(rawURL); err == nil {
		host = u.Host
	}
	opts, err := redis.ParseURL(rawURL)
	if err != nil {
		return fmt.Errorf("--redis / IPROC_REDIS_URL: not a valid redis://host:port/db URL")
	}
	opts.MaxRetries = -1
	opts.DialTimeout = redisCheckTimeout
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), redisCheckTimeout)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("--redis / IPROC_REDIS_URL: Redis at %s is not reachable: %v", host, err)
	}
	return nil
}
