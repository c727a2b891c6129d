package invapi

import "context"

// Params is implemented by the generated parameter structs (params_gen.go): one per
// catalog action, carrying its module, endpoint, method and safety with the values.
type Params interface {
	Request() *Request
}

// Send sends one typed request, e.g. c.Send(ctx, &EqRebootParams{ID: 40101, PIN: pin}).
// Reads are retried and replayed after a re-login; writes are sent once.
func (c *Client) Send(ctx context.Context, p Params) (*Response, error) {
	return c.Do(ctx, p.Request())
}
