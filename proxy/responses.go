package proxy

import "strconv"

func statusText(code int) string {
	switch code {
	case 100:
		return "Continue"
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 204:
		return "No Content"
	case 301:
		return "Moved Permanently"
	case 302:
		return "Found"
	case 304:
		return "Not Modified"
	case 400:
		return "Bad Request"
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 408:
		return "Request Timeout"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 429:
		return "Too Many Requests"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 502:
		return "Bad Gateway"
	case 503:
		return "Service Unavailable"
	case 504:
		return "Gateway Timeout"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status " + strconv.Itoa(code)
}

// errorResponses holds Apex's own answers, built once: errResp[status][close].
var errResp = func() map[int][2][]byte {
	m := map[int][2][]byte{}
	for _, s := range []int{400, 404, 408, 413, 414, 429, 431, 500, 501, 502, 503, 504, 505} {
		body := strconv.Itoa(s) + " " + statusText(s) + "\n"
		var pair [2][]byte
		for i, conn := range []string{"", "Connection: close\r\n"} {
			b := []byte("HTTP/1.1 " + strconv.Itoa(s) + " " + statusText(s) + "\r\n" +
				"Content-Type: text/plain; charset=utf-8\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n")
			if s == 503 || s == 429 {
				b = append(b, "Retry-After: 1\r\n"...)
			}
			b = append(b, conn...)
			b = append(b, "\r\n"...)
			b = append(b, body...)
			pair[i] = b
		}
		m[s] = pair
	}
	return m
}()

var continue100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")
