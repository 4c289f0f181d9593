package p2p

import (
	"fmt"
	"net"
	"strings"
)

// maxNameLen bounds a node name (it travels in memberlist meta and handshakes).
const maxNameLen = 255

// Name is a parsed node name "local@host".
type Name struct {
	Local string // the part before '@': letters, digits, '_' and '-'
	Host  string // the part after '@'
	Long  bool   // true when Host is a fully qualified name or an IP address
}

// String returns "local@host".
func (n Name) String() string { return n.Local + "@" + n.Host }

// ParseName validates a node name. Long names have a host with a dot or an
// IP address (like Erlang's -name); short names have a single-label host
// (like -sname).
func ParseName(s string) (Name, error) {
	if len(s) == 0 || len(s) > maxNameLen {
		return Name{}, fmt.Errorf("%w: %q: length must be 1..%d", ErrInvalidName, s, maxNameLen)
	}
	local, host, ok := strings.Cut(s, "@")
	if !ok || strings.Contains(host, "@") {
		return Name{}, fmt.Errorf("%w: %q: want exactly one '@'", ErrInvalidName, s)
	}
	if local == "" {
		return Name{}, fmt.Errorf("%w: %q: empty name part", ErrInvalidName, s)
	}
	for _, r := range local {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return Name{}, fmt.Errorf("%w: %q: name part may hold only letters, digits, '_' and '-'", ErrInvalidName, s)
		}
	}
	if host == "" {
		return Name{}, fmt.Errorf("%w: %q: empty host part", ErrInvalidName, s)
	}
	if ip := net.ParseIP(host); ip != nil {
		return Name{Local: local, Host: host, Long: true}, nil
	}
	for label := range strings.SplitSeq(host, ".") {
		if !validLabel(label) {
			return Name{}, fmt.Errorf("%w: %q: bad host label %q", ErrInvalidName, s, label)
		}
	}
	return Name{Local: local, Host: host, Long: strings.Contains(host, ".")}, nil
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkMode refuses mixing short and long names.
func checkMode(self Name, other string) error {
	o, err := ParseName(other)
	if err != nil {
		return err
	}
	if o.Long != self.Long {
		return fmt.Errorf("%w: %s is %s, %s is %s", ErrNameMode, self, modeWord(self.Long), other, modeWord(o.Long))
	}
	return nil
}

func modeWord(long bool) string {
	if long {
		return "a long name"
	}
	return "a short name"
}
