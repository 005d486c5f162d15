package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

var errNotAdmin = &httpError{http.StatusForbidden, "forbidden", "this route needs the admin token (API_ADMIN_TOKEN); a tenant token is not enough"}

// authenticateAdmin guards the operator routes with the admin token (API_ADMIN_TOKEN):
//
//   - no bearer token, or one that is neither the admin token nor a tenant token: 401 with
//     WWW-Authenticate, as on every other route;
//   - a valid tenant token (API_TOKENS): 403, since the caller is known but lacks the right;
//   - the admin token: the request proceeds.
//
// With no admin token configured the operator routes answer 401 or 403 to everyone. Every token
// is compared in constant time, so timing reveals neither which token matched nor how much of it.
func (s *Server) authenticateAdmin() gin.HandlerFunc {
	admin := sha256.Sum256([]byte(s.cfg.AdminToken))
	hasAdmin := s.cfg.AdminToken != ""
	var tenants [][32]byte
	for tok := range s.cfg.Tokens {
		tenants = append(tenants, sha256.Sum256([]byte(tok)))
	}
	return func(c *gin.Context) {
		scheme, tok, ok := strings.Cut(c.GetHeader("Authorization"), " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			s.fail(c, errUnauthorized)
			return
		}
		sum := sha256.Sum256([]byte(tok))
		isAdmin := subtle.ConstantTimeCompare(sum[:], admin[:]) == 1 && hasAdmin
		isTenant := false
		for _, t := range tenants {
			if subtle.ConstantTimeCompare(sum[:], t[:]) == 1 {
				isTenant = true
			}
		}
		switch {
		case isAdmin:
			c.Next()
		case isTenant:
			s.fail(c, errNotAdmin)
		default:
			s.fail(c, errUnauthorized)
		}
	}
}
