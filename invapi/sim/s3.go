package sim

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// S3 object storage (s3.php): plans, accounts with their keys, buckets and files. An
// account_id picks the account; without one, the customer's first account is meant.

func init() {
	register(s3ListPlans, "s3/list_plans")
	register(s3Locations, "s3/get_available_locations")
	register(s3GetBuckets, "s3/get_buckets", "s3/get_buckets_rmq")
	register(s3GetFiles, "s3/get_files")
	register(s3GetUsers, "s3/get_users")
	register(s3ShowKey, "s3/show_key")
	register(s3CreateAccount, "s3/create_account", "s3/create_order")
	register(s3CreateBucket, "s3/create_bucket")
	register(s3DeleteFile, "s3/delete_file")
	register(s3DeleteBucket, "s3/delete_bucket")
	register(s3DeleteAccount, "s3/delete_account")
	register(s3DeletePayment, "s3/delete_payment_account", "s3/cancel_payment_account_deletion")
	register(s3UpdateTraffic, "s3/update_traffic_info")
}

type s3State struct {
	accounts []*s3Account
}

type s3Account struct {
	ID        int64
	Plan      string
	Location  string
	AccessKey string
	SecretKey string
	Status    string                      // active, cancelling
	Buckets   map[string]map[string]int64 // bucket → file → size
	Traffic   int64
}

var s3Plans = []obj{
	{"id": 1, "name": "s3.start", "size_gb": 250, "price_eur": 3, "locations": "NL,DE"},
	{"id": 2, "name": "s3.pro", "size_gb": 1000, "price_eur": 9, "locations": "NL,DE,US"},
}

func (s *Server) s3() *s3State {
	if s.st.mod.s3 == nil {
		s.st.mod.s3 = &s3State{}
	}
	return s.st.mod.s3
}

// s3Account finds the account named by account_id, or the first one.
func (s *Server) s3Account(c *call) (*s3Account, resp, bool) {
	id := atoi(c.a.get("account_id"))
	for _, a := range s.s3().accounts {
		if id == 0 || a.ID == id {
			return a, resp{}, false
		}
	}
	if id == 0 {
		return nil, fail(-1, c.tag()+": no S3 account: create one with s3/create_account"), true
	}
	return nil, fail(-1, c.tag()+": S3 account not found"), true
}

func s3ListPlans(s *Server, c *call) resp {
	loc := strings.ToUpper(c.a.get("location"))
	out := []any{}
	for _, p := range s3Plans {
		if loc == "" || inCSV(p["locations"].(string), loc) {
			out = append(out, p)
		}
	}
	return ok(obj{"result": "OK", "plans": out})
}

func s3Locations(s *Server, c *call) resp {
	return ok(obj{"result": "OK", "locations": []string{"NL", "DE", "US"}})
}

func bucketView(a *s3Account, withKeys bool) obj {
	out := []any{}
	for _, b := range slices.Sorted(maps.Keys(a.Buckets)) {
		var size int64
		for _, n := range a.Buckets[b] {
			size += n
		}
		out = append(out, obj{"name": b, "objects": len(a.Buckets[b]), "size": size})
	}
	m := obj{"result": "OK", "account_id": a.ID, "buckets": out}
	if withKeys {
		m["access_key"], m["secret_key"] = a.AccessKey, a.SecretKey
	}
	return m
}

// s3GetBuckets answers get_buckets, and get_buckets_rmq with the account's keys too.
func s3GetBuckets(s *Server, c *call) resp {
	a, r, bad := s.s3Account(c)
	if bad {
		return r
	}
	return ok(bucketView(a, c.action == "get_buckets_rmq"))
}

func (s *Server) bucket(c *call) (*s3Account, string, resp, bool) {
	a, r, bad := s.s3Account(c)
	if bad {
		return nil, "", r, true
	}
	if r, bad := need(c, "bucket"); bad {
		return nil, "", r, true
	}
	b := c.a.get("bucket")
	if _, ok := a.Buckets[b]; !ok {
		return nil, "", fail(-1, c.tag()+": bucket "+b+" not found"), true
	}
	return a, b, resp{}, false
}

func s3GetFiles(s *Server, c *call) resp {
	a, b, r, bad := s.bucket(c)
	if bad {
		return r
	}
	names := slices.Sorted(maps.Keys(a.Buckets[b]))
	if q := c.a.get("search"); q != "" {
		kept := names[:0]
		for _, n := range names {
			if strings.Contains(n, q) {
				kept = append(kept, n)
			}
		}
		names = kept
	}
	page, limit := atoi(c.a.get("page")), atoi(c.a.get("limit"))
	if page < 1 {
		page = 1
	}
	if limit < 1 {
		limit = 50
	}
	total := len(names)
	from := min(int((page-1)*limit), total)
	to := min(from+int(limit), total)
	files := []any{}
	for _, n := range names[from:to] {
		files = append(files, obj{"key": n, "size": a.Buckets[b][n]})
	}
	return ok(obj{"result": "OK", "bucket": b, "files": files, "total": total, "page": page})
}

func s3GetUsers(s *Server, c *call) resp {
	out := []any{}
	for _, a := range s.s3().accounts {
		out = append(out, obj{"account_id": a.ID, "plan": a.Plan, "location": a.Location, "status": a.Status, "buckets": len(a.Buckets), "traffic": a.Traffic})
	}
	return ok(obj{"result": "OK", "users": out})
}

func s3ShowKey(s *Server, c *call) resp {
	a, r, bad := s.s3Account(c)
	if bad {
		return r
	}
	switch c.a.get("key_type") {
	case "access_key":
		return ok(obj{"result": "OK", "key": a.AccessKey})
	case "secret_key":
		return ok(obj{"result": "OK", "key": a.SecretKey})
	}
	return fail(-1, c.tag()+": key_type must be access_key or secret_key")
}

// s3CreateAccount serves create_account and create_order: a new account on a plan (an
// order also raises an invoice, which the sandbox does not model).
func s3CreateAccount(s *Server, c *call) resp {
	plan := c.a.get("plan_id")
	if plan == "" {
		plan = "1"
	}
	var name string
	for _, p := range s3Plans {
		if plan == p["name"] || plan == strconv.Itoa(p["id"].(int)) {
			name = p["name"].(string)
		}
	}
	if name == "" {
		return fail(-1, c.tag()+": unknown plan "+plan)
	}
	loc := strings.ToUpper(c.a.get("location"))
	if loc == "" {
		loc = "NL"
	}
	a := &s3Account{ID: s.st.mod.id(), Plan: name, Location: loc, Status: "active", Buckets: map[string]map[string]int64{},
		AccessKey: strings.ToUpper(newKey()[:20]), SecretKey: newKey() + newKey()[:8]}
	if b := c.a.get("bucket"); b != "" {
		if !validBucket(b) {
			return fail(-1, c.tag()+": invalid bucket name "+b)
		}
		a.Buckets[b] = map[string]int64{}
	}
	s.s3().accounts = append(s.s3().accounts, a)
	return ok(obj{"result": "OK", "account_id": a.ID, "plan": a.Plan, "location": a.Location})
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i, r := range b {
		alnum := (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')
		if !alnum && (r != '-' && r != '.' || i == 0 || i == len(b)-1) {
			return false
		}
	}
	return true
}

func s3CreateBucket(s *Server, c *call) resp {
	a, r, bad := s.s3Account(c)
	if bad {
		return r
	}
	if r, bad := need(c, "bucket"); bad {
		return r
	}
	b := c.a.get("bucket")
	if !validBucket(b) {
		return fail(-1, c.tag()+": invalid bucket name "+b)
	}
	if _, dup := a.Buckets[b]; dup {
		return fail(-1, c.tag()+": bucket "+b+" already exists")
	}
	a.Buckets[b] = map[string]int64{}
	return ok(obj{"result": "OK", "bucket": b, "account_id": a.ID})
}

func s3DeleteFile(s *Server, c *call) resp {
	a, b, r, bad := s.bucket(c)
	if bad {
		return r
	}
	f := c.a.get("file")
	if _, ok := a.Buckets[b][f]; !ok {
		return fail(-1, c.tag()+": file "+f+" not found")
	}
	delete(a.Buckets[b], f)
	return ok(obj{"result": "OK"})
}

func s3DeleteBucket(s *Server, c *call) resp {
	a, b, r, bad := s.bucket(c)
	if bad {
		return r
	}
	delete(a.Buckets, b)
	return ok(obj{"result": "OK"})
}

func s3DeleteAccount(s *Server, c *call) resp {
	a, r, bad := s.s3Account(c)
	if bad {
		return r
	}
	st := s.s3()
	for i, x := range st.accounts {
		if x == a {
			st.accounts = append(st.accounts[:i], st.accounts[i+1:]...)
		}
	}
	return ok(obj{"result": "OK"})
}

// s3DeletePayment starts (delete_payment_account) or withdraws
// (cancel_payment_account_deletion) the billing cancellation of an account.
func s3DeletePayment(s *Server, c *call) resp {
	a, r, bad := s.s3Account(c)
	if bad {
		return r
	}
	if c.action == "delete_payment_account" {
		a.Status = "cancelling"
	} else {
		if a.Status != "cancelling" {
			return fail(-1, c.tag()+": no deletion to cancel")
		}
		a.Status = "active"
	}
	return ok(obj{"result": "OK", "status": a.Status})
}

func s3UpdateTraffic(s *Server, c *call) resp {
	a, r, bad := s.s3Account(c)
	if bad {
		return r
	}
	return ok(obj{"result": "OK", "traffic": a.Traffic})
}

// PutS3Object stores a file in a bucket of the sandbox's first S3 account (tests and demos
// have no upload path: invapi has none either).
func (s *Server) PutS3Object(bucket, key string, size int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.s3().accounts {
		if files, ok := a.Buckets[bucket]; ok {
			files[key] = size
			return true
		}
	}
	return false
}
