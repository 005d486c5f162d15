package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

const (
	ctxTenant = "quire.tenant"
	ctxTaskID = "quire.task_id"
)

var errUnauthorized = &httpError{http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token"}

// authenticate resolves the bearer token to a tenant. Every configured token is compared in
// constant time, so timing reveals neither which token nor how much of it matched.
func (s *Server) authenticate() gin.HandlerFunc {
	type entry struct {
		sum    [32]byte
		tenant string
	}
	var tokens []entry
	for tok, tenant := range s.cfg.Tokens {
		tokens = append(tokens, entry{sha256.Sum256([]byte(tok)), tenant})
	}
	return func(c *gin.Context) {
		h := c.GetHeader("Authorization")
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			s.fail(c, errUnauthorized)
			return
		}
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		tenant := ""
		for _, e := range tokens {
			if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
				tenant = e.tenant
			}
		}
		if tenant == "" {
			s.fail(c, errUnauthorized)
			return
		}
		c.Set(ctxTenant, tenant)
		c.Next()
	}
}

func tenantOf(c *gin.Context) string { return c.GetString(ctxTenant) }
