package embed

// batch is a run of consecutive inputs sent in one request.
type batch struct {
	start, end int // texts[start:end]
	tokens     int
}

// batches cuts texts into consecutive runs of at most maxInputs inputs and maxTokens tokens as
// counted by c, greedily, so the number of requests is the least any order-keeping split
// allows. An input over maxTokens on its own gets a batch of its own: the endpoint decides
// whether the model takes it.
func batches(texts []string, c Counter, maxInputs, maxTokens int) []batch {
	var out []batch
	cur := batch{}
	for i, t := range texts {
		n := c.Count(t)
		if cur.end > cur.start && (cur.end-cur.start >= maxInputs || cur.tokens+n > maxTokens) {
			out = append(out, cur)
			cur = batch{start: i, end: i}
		}
		cur.end = i + 1
		cur.tokens += n
	}
	if cur.end > cur.start {
		out = append(out, cur)
	}
	return out
}
