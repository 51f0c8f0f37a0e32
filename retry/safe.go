package retry

// Stage is how far a failed attempt got before it failed.
//
// The zero Stage is AfterResponse, the one that never allows a retry, so a
// Stage left unset errs on the safe side.
type Stage uint8

const (
	// AfterResponse: at least one byte of the response arrived.
	AfterResponse Stage = iota
	// AfterWrite: request bytes were handed to the connection (even
	// partly, even if the write then failed) and no response byte came
	// back.
	AfterWrite
	// BeforeWrite: no request byte was handed to the connection: the
	// connect failed, or the first write on a reused connection failed
	// having taken nothing.
	BeforeWrite
)

func (s Stage) String() string {
	switch s {
	case AfterResponse:
		return "after_response"
	case AfterWrite:
		return "after_write"
	case BeforeWrite:
		return "before_write"
	}
	return "unknown"
}

// Safe reports whether a request whose attempt failed at stage may be sent
// again, to the same server or another. The rule follows RFC 9110 §9.2.2:
//
// BeforeWrite: the request never reached the wire, so no server can have
// acted on it. Sending it again is not a retry of something that happened
// but its first real attempt, and is safe for every method.
//
// AfterWrite: the server may have received the request and acted on it;
// the failure (a reused connection closed under the request, the keep-alive
// race; a reset; a timeout) says nothing about whether it did. Only a
// request whose effect is the same when applied twice may be sent again: an
// idempotent method (GET, HEAD, OPTIONS, TRACE, PUT, DELETE), or a request
// carrying an Idempotency-Key field, by which the client declares it
// idempotent and the server undertakes to apply it once
// (draft-ietf-httpapi-idempotency-key-header). RFC 9110 says "a proxy MUST
// NOT automatically retry non-idempotent requests"; a keyed request is
// taken as idempotent in the sense of the RFC's own exception, "some means
// to know that the request semantics are actually idempotent, regardless
// of the method".
//
// AfterResponse: the server has acted and its answer may already be on the
// way to the client. Never.
//
// Methods are compared exactly: they are case-sensitive (RFC 9110 §9.1),
// so "get" is an unknown method, and unknown methods are not idempotent.
//
// Safe answers what the protocol allows, nothing more. The caller must
// still hold the whole request, body included, to send it again; should
// send a request again at most a bounded number of times ("a client SHOULD
// NOT automatically retry a failed automatic retry", §9.2.2); and must have
// the Budget's leave.
func Safe(method []byte, hasIdempotencyKey bool, stage Stage) bool {
	switch stage {
	case BeforeWrite:
		return true
	case AfterWrite:
		return hasIdempotencyKey || Idempotent(method)
	}
	return false
}

// Idempotent reports whether method is one of the idempotent methods of
// RFC 9110 §9.2.2 (the safe GET, HEAD, OPTIONS and TRACE, and PUT and
// DELETE), compared case-sensitively.
func Idempotent(method []byte) bool {
	// The conversion in a switch does not allocate.
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}
