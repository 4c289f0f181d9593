package p2p

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/memberlist"
	ma "github.com/multiformats/go-multiaddr"
)

// MaxTagsSize bounds the encoded size of a node's tags, in bytes: each tag
// costs 2 + len(key) + len(value). memberlist's meta is at most 512 bytes
// (memberlist.MetaMaxSize) and also carries the peer ID (about 50 bytes
// with its header) and the libp2p addresses, which get the rest (at least
// 200 bytes: a dozen TCP addresses).
const MaxTagsSize = 256

// tagsSize is the encoded size of tags.
func tagsSize(tags map[string]string) int {
	n := 0
	for k, v := range tags {
		n += 2 + len(k) + len(v)
	}
	return n
}

// checkTags checks tags against MaxTagsSize and the key rules.
func checkTags(tags map[string]string) error {
	if len(tags) > 255 {
		return fmt.Errorf("%w: %d tags, at most 255", ErrTagsTooLarge, len(tags))
	}
	for k, v := range tags {
		if k == "" {
			return fmt.Errorf("%w: empty tag key", ErrInvalidTags)
		}
		if len(k) > 255 || len(v) > 255 {
			return fmt.Errorf("%w: tag %.32q: key and value are at most 255 bytes each", ErrTagsTooLarge, k)
		}
	}
	if n := tagsSize(tags); n > MaxTagsSize {
		return fmt.Errorf("%w: %d bytes encoded, limit %d", ErrTagsTooLarge, n, MaxTagsSize)
	}
	return nil
}

// rebuildMeta encodes this node's meta with tags and the leaving flag and
// makes it the one NodeMeta hands to memberlist.
func (h *Host) rebuildMeta(tags map[string]string, leaving bool) error {
	if err := checkTags(tags); err != nil {
		return err
	}
	m := &nodeMeta{
		Incarnation: h.self.Incarnation,
		Hidden:      h.cfg.Hidden,
		Leaving:     leaving,
		ID:          h.lh.ID(),
		Addrs:       h.announcedAddrs(),
		Tags:        tags,
	}
	b := m.encode(memberlist.MetaMaxSize)
	h.meta.Store(&b)
	return nil
}

// SetTags replaces this node's tags (Config.Tags) and re-announces its
// meta through memberlist, so other members see them in Member.Tags and
// get a MemberUpdated event. It checks the tags first: beyond MaxTagsSize
// it fails with ErrTagsTooLarge, with an empty key with ErrInvalidTags, and
// nothing changes. ctx bounds the wait for the announcement to be
// gossiped (memberlist's UpdateNode); when ctx ends first the error wraps
// ctx.Err(), and the new tags still spread (gossip and push/pull carry
// them). A hidden node has no meta: SetTags fails with ErrInvalidConfig.
// Concurrent calls are applied one at a time.
func (h *Host) SetTags(ctx context.Context, tags map[string]string) error {
	if h.ml == nil {
		return fmt.Errorf("%w: a hidden node has no membership meta", ErrInvalidConfig)
	}
	if err := checkTags(tags); err != nil {
		return err
	}
	tags = maps.Clone(tags)
	h.metaMu.Lock()
	// Start the worker under h.mu: Stop sets stopping under it before it
	// stops the stopper (whose Stop holds the stopper's lock while it waits).
	h.mu.Lock()
	if h.stopping {
		h.mu.Unlock()
		h.metaMu.Unlock()
		return ErrStopped
	}
	if err := h.rebuildMeta(tags, h.leaving); err != nil {
		h.mu.Unlock()
		h.metaMu.Unlock()
		return err
	}
	h.tags = tags
	timeout := defaultLeaveTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(dl), time.Millisecond))
	}
	res := make(chan error, 1)
	h.stopper.RunWorker(func() {
		// A leave invalidates this announcement in memberlist's queue,
		// which ends the wait, so Stop is not held up by it.
		res <- h.ml.UpdateNode(timeout)
	})
	h.mu.Unlock()
	h.metaMu.Unlock()
	select {
	case err := <-res:
		if err != nil {
			return fmt.Errorf("p2p: announce tags: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("p2p: announce tags: %w", ctxErr(ctx))
	case <-h.stopper.ShouldStop():
		return ErrStopped
	}
}

// announceLeave marks this node's meta as leaving and gossips it, so that
// members tell its coming leave from a failure (memberlist's leave event
// does not say which). It waits at most timeout.
func (h *Host) announceLeave(timeout time.Duration) {
	h.metaMu.Lock()
	h.leaving = true
	err := h.rebuildMeta(h.tags, true)
	h.metaMu.Unlock()
	if err == nil {
		err = h.ml.UpdateNode(timeout)
	}
	if err != nil {
		log.Debugw("leave announcement", "err", err.Error())
	}
}

// announcedAddrs returns the libp2p addresses this node announces: the
// advertised one (Config.AdvertiseAddr), else what libp2p reports.
func (h *Host) announcedAddrs() []ma.Multiaddr {
	if p := h.adv.addrs.Load(); p != nil {
		return slices.Clone(*p)
	}
	return h.lh.Addrs()
}
