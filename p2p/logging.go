package p2p

import (
	"bytes"
	stdlog "log"
	"regexp"
	"strings"

	logging "github.com/ipfs/go-log/v2"
)

var log = logging.Logger("nodal/p2p")

var mlog = logging.Logger("memberlist")

// memberlistLogger returns a *log.Logger for memberlist whose lines are
// routed into go-log's "memberlist" subsystem by their level prefix.
func memberlistLogger() *stdlog.Logger {
	return stdlog.New(mlWriter{}, "", 0)
}

type mlWriter struct{}

var decryptFailRe = regexp.MustCompile(`(?i)no installed keys could decrypt the message.*?from=([^ \n]+)`)

func (mlWriter) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	lvl, msg := splitLevel(line)
	msg = strings.TrimPrefix(msg, "memberlist: ")
	switch lvl {
	case "ERR":
		if m := decryptFailRe.FindStringSubmatch(msg); m != nil {
			// A gossip peer with another cookie: say it in words.
			log.Warnw("cookie mismatch from "+m[1]+" (gossip could not be decrypted)", "from", m[1])
			return len(p), nil
		}
		if strings.Contains(msg, "use of closed network connection") || strings.Contains(msg, "shut down") {
			mlog.Debug(msg) // noise while shutting down
			return len(p), nil
		}
		mlog.Error(msg)
	case "WARN":
		mlog.Warn(msg)
	case "INFO":
		mlog.Info(msg)
	default:
		mlog.Debug(msg)
	}
	return len(p), nil
}

func splitLevel(line string) (string, string) {
	if strings.HasPrefix(line, "[") {
		if i := strings.IndexByte(line, ']'); i > 0 {
			return line[1:i], strings.TrimSpace(line[i+1:])
		}
	}
	return "DEBUG", line
}
