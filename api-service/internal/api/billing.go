package api

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/shopspring/decimal"

	"github.com/quirehq/quire/shared/docstore"
)

// Billing prices usage for GET /api/v1/usage/invoice.
type Billing struct {
	// Prices is the unit price of each metric (BILLING_PRICES); a metric without one is listed
	// at price 0.
	Prices map[string]decimal.Decimal
	// Currency is the ISO 4217 code the prices are in (BILLING_CURRENCY, default USD).
	Currency string
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// ParseBilling reads BILLING_PRICES, "metric=price,metric=price" with decimal prices per unit
// (a byte, a token, a document...), and BILLING_CURRENCY, a three-letter ISO 4217 code.
// Errors name the variable and say what is wrong.
func ParseBilling(prices, currency string) (Billing, error) {
	b := Billing{Prices: map[string]decimal.Decimal{}, Currency: strings.TrimSpace(currency)}
	if b.Currency == "" {
		b.Currency = "USD"
	}
	if !currencyPattern.MatchString(b.Currency) {
		return Billing{}, fmt.Errorf("BILLING_CURRENCY: %q is not a three-letter ISO 4217 code such as USD or EUR", currency)
	}
	for pair := range strings.SplitSeq(prices, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		metric, price, ok := strings.Cut(pair, "=")
		metric, price = strings.TrimSpace(metric), strings.TrimSpace(price)
		if !ok {
			return Billing{}, fmt.Errorf("BILLING_PRICES: %q: want metric=price", pair)
		}
		if !slices.Contains(docstore.Metrics, metric) {
			return Billing{}, fmt.Errorf("BILLING_PRICES: unknown metric %q (want one of %s)", metric, strings.Join(docstore.Metrics, ", "))
		}
		if _, dup := b.Prices[metric]; dup {
			return Billing{}, fmt.Errorf("BILLING_PRICES: metric %s priced twice", metric)
		}
		d, err := decimal.NewFromString(price)
		if err != nil || d.IsNegative() {
			return Billing{}, fmt.Errorf("BILLING_PRICES: price of %s %q is not a non-negative decimal number", metric, price)
		}
		b.Prices[metric] = d
	}
	return b, nil
}

// invoiceLine is one metric of an invoice. Prices and amounts are decimal strings, exact:
// amount = quantity × unit_price, never rounded through a float.
type invoiceLine struct {
	Metric    string `json:"metric"`
	Quantity  int64  `json:"quantity"`
	UnitPrice string `json:"unit_price"`
	Amount    string `json:"amount"`
}

// invoice is the answer of GET /api/v1/usage/invoice.
type invoice struct {
	TenantID string        `json:"tenant_id"`
	Month    string        `json:"month"`
	Currency string        `json:"currency"`
	Lines    []invoiceLine `json:"lines"`
	Total    string        `json:"total"`
}

// price turns a month's quantities into an invoice: a line per metric in docstore.Metrics order.
func (b Billing) price(tenant, month string, quantities map[string]int64) invoice {
	inv := invoice{TenantID: tenant, Month: month, Currency: b.Currency, Lines: []invoiceLine{}}
	total := decimal.Zero
	for _, m := range docstore.Metrics {
		p := b.Prices[m] // the zero decimal when unpriced
		amount := p.Mul(decimal.NewFromInt(quantities[m]))
		total = total.Add(amount)
		inv.Lines = append(inv.Lines, invoiceLine{Metric: m, Quantity: quantities[m], UnitPrice: p.String(), Amount: amount.String()})
	}
	inv.Total = total.String()
	return inv
}
