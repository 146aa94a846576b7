package graph

import (
	"time"

	"github.com/crumbs-dev/crumbs/graph/model"
	"github.com/crumbs-dev/crumbs/models"
)

func rangeIn(in *model.RangeInput) models.RangeInput {
	if in == nil {
		return models.RangeInput{}
	}
	out := models.RangeInput{From: in.From, To: in.To, Timezone: deref(in.Timezone, "")}
	if in.Interval != nil {
		out.Interval = models.Interval(*in.Interval)
	}
	return out
}

func rulesIn(in []*model.RuleInput) []models.Rule {
	if in == nil {
		return nil
	}
	out := make([]models.Rule, len(in))
	for i, r := range in {
		out[i] = models.Rule{Field: r.Field, Operator: string(r.Operator), Value: deref(r.Value, "")}
	}
	return out
}

func rulesOut(in []models.Rule) []*models.Rule {
	out := make([]*models.Rule, len(in))
	for i := range in {
		out[i] = &in[i]
	}
	return out
}

func seconds(n *int) *time.Duration {
	if n == nil {
		return nil
	}
	d := time.Duration(*n) * time.Second
	return &d
}

func secondsOf(d *time.Duration) *float64 {
	if d == nil {
		return nil
	}
	s := d.Seconds()
	return &s
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func funnelOut(rep *models.FunnelReport) *model.FunnelReport {
	out := &model.FunnelReport{From: rep.From, To: rep.To}
	for _, st := range rep.Steps {
		out.Steps = append(out.Steps, &model.FunnelStep{
			Code: st.Matcher.Code, Rules: rulesOut(st.Matcher.Rules),
			Entered: int(st.Entered), Converted: int(st.Converted),
			ConversionRate:            ratio(st.Converted, st.Entered),
			OverallRate:               ratio(st.Entered, rep.Steps[0].Entered),
			MedianSecondsFromPrevious: secondsOf(st.MedianFromPrevious),
		})
	}
	return out
}

func goalReportOut(rep *models.GoalReport) *model.GoalReport {
	return &model.GoalReport{
		From: rep.From, To: rep.To, Started: int(rep.Started), Completed: int(rep.Completed),
		ConversionRate: rep.ConversionRate(), MedianSecondsToComplete: secondsOf(rep.MedianToComplete),
	}
}
