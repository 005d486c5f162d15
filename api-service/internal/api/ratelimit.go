package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// rateLimit limits each tenant to Config.RateLimit requests per second with bursts of
// Config.RateBurst (API_RATE_LIMIT, API_RATE_BURST). A request over the limit is answered 429
// with Retry-After (whole seconds until a request would be allowed) and is not counted. With
// RateLimit 0 (the default) nothing is limited.
//
// There is one token bucket per tenant named in Config.Tokens, made here, so the map never
// grows with traffic: requests are limited only after authentication, and unknown tokens never
// reach it. It runs before Idempotency-Key handling, so a refused request stores nothing.
func (s *Server) rateLimit() gin.HandlerFunc {
	if s.cfg.RateLimit <= 0 {
		return func(c *gin.Context) { c.Next() }
	}
	burst := s.cfg.RateBurst
	if burst <= 0 {
		burst = max(1, int(math.Ceil(s.cfg.RateLimit)))
	}
	limiters := map[string]*rate.Limiter{}
	for _, tenant := range s.cfg.Tokens {
		if limiters[tenant] == nil {
			limiters[tenant] = rate.NewLimiter(rate.Limit(s.cfg.RateLimit), burst)
		}
	}
	return func(c *gin.Context) {
		lim := limiters[tenantOf(c)]
		if lim == nil {
			c.Next()
			return
		}
		now := s.now()
		r := lim.ReserveN(now, 1)
		delay := r.DelayFrom(now)
		if delay == 0 {
			c.Next()
			return
		}
		r.CancelAt(now)
		secs := max(1, int(math.Ceil(delay.Seconds())))
		c.Header("Retry-After", strconv.Itoa(secs))
		s.fail(c, &httpError{http.StatusTooManyRequests, "too_many_requests",
			fmt.Sprintf("rate limit of %g requests per second exceeded; retry after %d s", s.cfg.RateLimit, secs)})
	}
}
