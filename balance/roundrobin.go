package balance

// pickRoundRobin is nginx's smooth weighted round robin
// (ngx_http_upstream_get_peer): every available server's current grows by
// its weight, the largest current wins and gives back the total. Over any
// stretch of picks in which availability does not change, server i gets
// weight_i/total of them, and no server is picked twice in a row while
// another's current has caught up, which spreads a heavy server's turns
// out. Unavailable servers neither gain nor lose, so they rejoin where they
// left off. O(servers) per pick, which is fine for the handful of servers
// a backend has.
func (b *Balancer) pickRoundRobin() int {
	if len(b.avail) == 0 {
		return -1
	}
	best := -1
	var total, max int64
	for i := range b.servers {
		s := &b.servers[i]
		if s.availPos < 0 {
			continue
		}
		s.current += s.weight
		total += s.weight
		if best < 0 || s.current > max {
			best, max = i, s.current
		}
	}
	b.servers[best].current -= total
	return best
}
