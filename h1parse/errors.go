package h1parse

import (
	"errors"
	"strconv"
)

// Error is a parse failure carrying the HTTP status the peer should get.
// All Error values returned are package-level variables (no allocation).
type Error struct {
	Status int    // 400, 413, 414, 431, 501, 505 for requests; 502 for responses
	Reason string // short, human readable, e.g. "content-length with transfer-encoding"
}

// Error implements error. It formats on demand; the hot path never calls it.
func (e *Error) Error() string {
	return "h1parse: " + strconv.Itoa(e.Status) + " " + e.Reason
}

// Is makes errors.Is match errors by Reason, so the 502 error Response.Parse
// returns for, say, a Content-Length with Transfer-Encoding matches
// ErrCLWithTE.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// ErrNeedMore: the head (or chunk framing) is incomplete; feed more bytes.
// ChunkedDecoder.Decode keeps partial framing itself and returns ErrNeedMore
// only when called with empty input before the body is done.
var ErrNeedMore = errors.New("h1parse: need more data")

// errCode is the internal identity of a failure. Request and Response map it
// to their own package-level *Error (responses always carry 502), which keeps
// the scanning code shared and allocation-free.
type errCode uint8

const (
	eNone errCode = iota
	eNeedMore

	// Start line.
	eLineEnding
	eRequestLine
	eVersion
	eVersionUnsupported
	eMethod
	eTarget
	eStatusLine

	// Field lines.
	eFieldName
	eNoColon
	eSpaceBeforeColon
	eObsFold
	eFieldValue

	// Field semantics.
	eNoHost
	eDupHost
	eBadHost
	eCLWithTE
	eDupCL
	eBadCL
	eTEInHTTP10
	eChunkedTwice
	eChunkedNotFinal
	eBadTE
	eUnsupportedTE
	eTooManyConnOptions

	// Limits.
	eLineTooLong
	eHeadTooLarge
	eTooManyFields

	// Chunked framing.
	eChunkSize
	eChunkSizeOverflow
	eChunkExt
	eChunkExtTooLong
	eChunkDataCRLF
	eChunkLineEnding
	eTrailer
	eTrailerTooLarge

	numCodes
)

// The errors Parse and Decode return. The Status is what a server answers a
// client; Response.Parse returns twins of these with the same Reason and
// Status 502 (errors.Is matches them, see Error.Is). ChunkedDecoder returns
// the chunk errors with Status 400 in both directions.
var (
	ErrLineEnding         = &Error{400, "line not terminated by CRLF (bare CR or LF)"}
	ErrRequestLine        = &Error{400, "malformed request line"}
	ErrVersion            = &Error{400, "malformed HTTP version"}
	ErrVersionUnsupported = &Error{505, "unsupported HTTP version"}
	ErrMethod             = &Error{400, "invalid method"}
	ErrTarget             = &Error{400, "invalid request target"}
	ErrStatusLine         = &Error{502, "malformed status line"} // responses only

	ErrFieldName        = &Error{400, "invalid field name"}
	ErrNoColon          = &Error{400, "field line without colon"}
	ErrSpaceBeforeColon = &Error{400, "whitespace between field name and colon"}
	ErrObsFold          = &Error{400, "obsolete line folding"}
	ErrFieldValue       = &Error{400, "invalid character in field value"}

	ErrNoHost             = &Error{400, "missing host"}
	ErrDupHost            = &Error{400, "multiple host fields"}
	ErrBadHost            = &Error{400, "invalid host"}
	ErrCLWithTE           = &Error{400, "content-length with transfer-encoding"}
	ErrDupCL              = &Error{400, "multiple content-length fields"}
	ErrBadCL              = &Error{400, "invalid content-length"}
	ErrTEInHTTP10         = &Error{400, "transfer-encoding in HTTP/1.0"}
	ErrChunkedTwice       = &Error{400, "chunked applied more than once"}
	ErrChunkedNotFinal    = &Error{400, "chunked is not the final transfer coding"}
	ErrBadTE              = &Error{400, "invalid transfer-encoding"}
	ErrUnsupportedTE      = &Error{501, "unsupported transfer coding"}
	ErrTooManyConnOptions = &Error{400, "too many connection options"}

	ErrLineTooLong   = &Error{414, "request line too long"}
	ErrHeadTooLarge  = &Error{431, "header section too large"}
	ErrTooManyFields = &Error{431, "too many header fields"}

	ErrChunkSize         = &Error{400, "invalid chunk size"}
	ErrChunkSizeOverflow = &Error{400, "chunk size overflow"}
	ErrChunkExt          = &Error{400, "invalid chunk extension"}
	ErrChunkExtTooLong   = &Error{400, "chunk extension too long"}
	ErrChunkDataCRLF     = &Error{400, "chunk data not followed by CRLF"}
	ErrChunkLineEnding   = &Error{400, "chunk framing not terminated by CRLF (bare CR or LF)"}
	ErrTrailer           = &Error{400, "invalid trailer field"}
	ErrTrailerTooLarge   = &Error{400, "trailer section too large"}
)

// reqErr maps codes to request errors; respErr to their 502 counterparts.
var (
	reqErr = [numCodes]*Error{
		eLineEnding:         ErrLineEnding,
		eRequestLine:        ErrRequestLine,
		eVersion:            ErrVersion,
		eVersionUnsupported: ErrVersionUnsupported,
		eMethod:             ErrMethod,
		eTarget:             ErrTarget,
		eStatusLine:         ErrStatusLine,
		eFieldName:          ErrFieldName,
		eNoColon:            ErrNoColon,
		eSpaceBeforeColon:   ErrSpaceBeforeColon,
		eObsFold:            ErrObsFold,
		eFieldValue:         ErrFieldValue,
		eNoHost:             ErrNoHost,
		eDupHost:            ErrDupHost,
		eBadHost:            ErrBadHost,
		eCLWithTE:           ErrCLWithTE,
		eDupCL:              ErrDupCL,
		eBadCL:              ErrBadCL,
		eTEInHTTP10:         ErrTEInHTTP10,
		eChunkedTwice:       ErrChunkedTwice,
		eChunkedNotFinal:    ErrChunkedNotFinal,
		eBadTE:              ErrBadTE,
		eUnsupportedTE:      ErrUnsupportedTE,
		eTooManyConnOptions: ErrTooManyConnOptions,
		eLineTooLong:        ErrLineTooLong,
		eHeadTooLarge:       ErrHeadTooLarge,
		eTooManyFields:      ErrTooManyFields,
		eChunkSize:          ErrChunkSize,
		eChunkSizeOverflow:  ErrChunkSizeOverflow,
		eChunkExt:           ErrChunkExt,
		eChunkExtTooLong:    ErrChunkExtTooLong,
		eChunkDataCRLF:      ErrChunkDataCRLF,
		eChunkLineEnding:    ErrChunkLineEnding,
		eTrailer:            ErrTrailer,
		eTrailerTooLarge:    ErrTrailerTooLarge,
	}
	respErr = func() (t [numCodes]*Error) {
		for i, e := range reqErr {
			if e != nil {
				t[i] = &Error{Status: 502, Reason: e.Reason}
			}
		}
		t[eLineTooLong] = &Error{Status: 502, Reason: "status line too long"}
		return t
	}()
)
