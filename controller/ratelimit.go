package controller

import "golang.org/x/time/rate"

// defaultBucket bounds retries across all keys (10/s, bursts of 100), as
// client-go's default controller rate limiter does.
func defaultBucket() *rate.Limiter { return rate.NewLimiter(rate.Limit(10), 100) }
