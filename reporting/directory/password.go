package directory

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/bcrypt"
)

// maxPasswordBytes is bcrypt's input limit: it ignores anything past 72
// bytes, so longer passwords are refused rather than silently truncated.
const maxPasswordBytes = 72

// dummyHash is a well-formed bcrypt hash of a throwaway password at
// bcrypt.MinCost. Authenticate compares unknown ids against it, with its cost
// digits replaced, so that they take as long as known ones.
const dummyHash = "$2a$04$slMfgS1/T9P2FE1b1j/UpOYNxqKXYKNUhs3irw8gnH6IMxMaMkypi"

// dummyHashAt returns dummyHash with the given cost.
func dummyHashAt(cost int) []byte {
	h := []byte(dummyHash)
	copy(h[4:6], fmt.Sprintf("%02d", cost))
	return h
}

// HashPassword returns the bcrypt hash of password at cost (bcrypt.MinCost to
// bcrypt.MaxCost; bcrypt.DefaultCost for real directories). Empty passwords
// and passwords over 72 bytes are refused. Errors never contain the password.
func HashPassword(password string, cost int) (string, error) {
	switch {
	case password == "":
		return "", errors.New("hash password: the password is empty")
	case len(password) > maxPasswordBytes:
		return "", fmt.Errorf("hash password: the password is %d bytes long; bcrypt allows at most %d", len(password), maxPasswordBytes)
	case cost < bcrypt.MinCost || cost > bcrypt.MaxCost:
		return "", fmt.Errorf("hash password: cost %d is outside %d–%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// Authenticate returns the agent with the given id when password matches its
// hash. An unknown id is compared against a dummy hash of the directory's
// usual cost, so the answer takes as long whether or not the agent exists.
// An empty password, or one over 72 bytes, is refused at once.
func (d *Directory) Authenticate(id, password string) (Agent, bool) {
	if password == "" || len(password) > maxPasswordBytes {
		return Agent{}, false
	}
	a, known := d.agents[id]
	hash := d.dummyHash
	if known {
		hash = []byte(a.PasswordHash)
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !known {
		return Agent{}, false
	}
	return a, true
}

// checkHash reports whether h is a complete bcrypt hash ($2a$, $2b$ or $2y$,
// a two-digit cost, 53 characters of bcrypt base64) and returns its cost.
func checkHash(h string) (int, bool) {
	if len(h) != 60 || h[0] != '$' || h[1] != '2' || h[3] != '$' || h[6] != '$' {
		return 0, false
	}
	if v := h[2]; v != 'a' && v != 'b' && v != 'y' {
		return 0, false
	}
	if h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9' {
		return 0, false
	}
	for i := 7; i < len(h); i++ {
		c := h[i]
		if !(c == '.' || c == '/' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9') {
			return 0, false
		}
	}
	cost, err := bcrypt.Cost([]byte(h))
	if err != nil {
		return 0, false
	}
	return cost, true
}

// usualCost returns the most common cost among costs (the higher on a tie),
// or bcrypt.DefaultCost when there are none.
func usualCost(costs map[int]int) int {
	best, n := bcrypt.DefaultCost, 0
	for c, k := range costs {
		if k > n || k == n && c > best {
			best, n = c, k
		}
	}
	return best
}
