package graph

import (
	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
)

// guard is the URL guard delivery URLs are saved under: the dispatcher's,
// or the strict default when this server runs none.
func (r *Resolver) guard() models.URLGuard {
	if r.Automations == nil {
		return models.URLGuard{}
	}
	return r.Automations.Guard()
}

func actionIn(kind model.ActionKind, url *string, headers []*model.HeaderInput, template *string, enabled *bool) models.AutomationActionInput {
	in := models.AutomationActionInput{URL: url, Template: template, Enabled: enabled}
	if kind != "" {
		k := string(kind)
		in.Kind = &k
	}
	if headers != nil {
		in.Headers = make([]models.Header, len(headers))
		for i, h := range headers {
			in.Headers[i] = models.Header{Name: h.Name, Value: h.Value}
		}
	}
	return in
}

func deliveryConnection(page *models.DeliveryPage) *model.DeliveryConnection {
	conn := &model.DeliveryConnection{Edges: make([]*model.DeliveryEdge, len(page.Deliveries)), PageInfo: &model.PageInfo{HasNextPage: page.HasNextPage}}
	for i, d := range page.Deliveries {
		conn.Edges[i] = &model.DeliveryEdge{Cursor: d.Cursor(), Node: d}
	}
	if n := len(conn.Edges); n > 0 {
		conn.PageInfo.EndCursor = &conn.Edges[n-1].Cursor
	}
	return conn
}
