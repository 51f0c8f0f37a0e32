package h1parse

import "testing"

var respChecks = map[string]func(t *testing.T, r *Response){
	"200 ok cl": func(t *testing.T, r *Response) {
		expect(t, r.Status, 200)
		expect(t, string(r.Reason), "OK")
		expect(t, r.Minor, 1)
		expect(t, r.ContentLength, int64(5))
		expect(t, r.Close, false)
		k, n := r.Body(false)
		expect(t, k, BodyLength)
		expect(t, n, int64(5))
		k, _ = r.Body(true)
		expect(t, k, BodyNone)
	},
	"empty reason with sp":    func(t *testing.T, r *Response) { expect(t, string(r.Reason), "") },
	"empty reason without sp": func(t *testing.T, r *Response) { expect(t, r.Status, 200) },
	"reason with spaces and obs-text": func(t *testing.T, r *Response) {
		expect(t, string(r.Reason), "Not \xc3\xa9 Found\t")
	},
	"chunked": func(t *testing.T, r *Response) {
		k, _ := r.Body(false)
		expect(t, k, BodyChunked)
	},
	"until close": func(t *testing.T, r *Response) {
		k, n := r.Body(false)
		expect(t, k, BodyUntilClose)
		expect(t, n, int64(-1))
	},
	"1.0 close":      func(t *testing.T, r *Response) { expect(t, r.Close, true) },
	"1.0 keep-alive": func(t *testing.T, r *Response) { expect(t, r.Close, false) },
	"1.1 close":      func(t *testing.T, r *Response) { expect(t, r.Close, true) },
	"100 continue": func(t *testing.T, r *Response) {
		k, _ := r.Body(false)
		expect(t, k, BodyNone)
	},
	"101 switching": func(t *testing.T, r *Response) {
		expect(t, r.IsHopByHop([]byte("Upgrade")), true)
	},
	"204": func(t *testing.T, r *Response) {
		k, _ := r.Body(false)
		expect(t, k, BodyNone)
	},
	"304 with cl": func(t *testing.T, r *Response) {
		k, _ := r.Body(false)
		expect(t, k, BodyNone)
	},
	"999": func(t *testing.T, r *Response) { expect(t, r.Status, 999) },
	"set-cookie fields": func(t *testing.T, r *Response) {
		expect(t, len(r.Fields), 3)
		k, _ := r.Body(false)
		expect(t, k, BodyNone)
	},
}

func TestResponsePolicy(t *testing.T) {
	for _, tc := range policyResponses {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			var r Response
			err := r.Parse(in, tc.lim)
			if got := statusOf(err); got != tc.status {
				t.Fatalf("status %d (%v), want %d", got, err, tc.status)
			}
			if tc.status > 0 && !isPackageErr(err, &respErr) {
				t.Fatalf("error %p is not a package variable", err)
			}
			if tc.status == ok {
				checkResponse(t, in, &r)
			}
			if check := respChecks[tc.name]; check != nil {
				check(t, &r)
			}
		})
	}
}

func TestResponseSplit(t *testing.T) {
	for _, tc := range policyResponses {
		t.Run(tc.name, func(t *testing.T) {
			in := []byte(tc.in)
			r, err := feedResp(in, nil, tc.lim, false)
			want := respSummary(r, err)
			for i := 0; i <= len(in); i++ {
				r, err := feedResp(in, []int{i}, tc.lim, i%2 == 1)
				if got := respSummary(r, err); got != want {
					t.Fatalf("split at %d:\n%s\nwant\n%s", i, got, want)
				}
			}
			for _, fresh := range []bool{false, true} {
				r, err := feedResp(in, everyByte(len(in)), tc.lim, fresh)
				if got := respSummary(r, err); got != want {
					t.Fatalf("byte by byte (fresh=%v):\n%s\nwant\n%s", fresh, got, want)
				}
			}
		})
	}
}

func TestResponseReset(t *testing.T) {
	var r Response
	if err := r.Parse([]byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close, x-y\r\n\r\n"), nil); err != nil {
		t.Fatal(err)
	}
	expect(t, r.IsHopByHop([]byte("X-Y")), true)
	r.Reset()
	if err := r.Parse([]byte("HTTP/1.1 204 No Content\r\n\r\n"), nil); err != nil {
		t.Fatal(err)
	}
	expect(t, r.ContentLength, int64(-1))
	expect(t, r.Close, false)
	expect(t, r.IsHopByHop([]byte("X-Y")), false)
}
