// The rule editor shared by the event browser, funnels and goals.
import { focusAfterRemoval, focusOn, html, rendered } from './ui.js'

export const OPERATORS = ['equals', 'not_equals', 'contains', 'starts_with', 'ends_with', 'greater_than', 'less_than', 'exists']
export const FIELDS = ['code', 'url', 'referrer', 'source', 'title', 'lead.email', 'properties.']

/**
 * Rules read from a link (?rules=…, a funnel's ?f=…) as the editor takes
 * them: what is not a rule is left out, so a mangled or hand-made link shows
 * the page instead of breaking it.
 */
export const readRules = (x) => (Array.isArray(x) ? x : []).filter((r) => r && typeof r === 'object')
  .map((r) => ({ field: String(r.field ?? ''), operator: OPERATORS.includes(r.operator) ? r.operator : 'equals', value: r.value == null ? '' : String(r.value) }))

export const cleanRules = (rules) => rules.filter((r) => r.field && r.field !== 'properties.').map((r) => ({ field: r.field, operator: r.operator, value: r.operator === 'exists' ? null : r.value || '' }))

/**
 * Edits a list of {field, operator, value}; idp makes the ids unique on the
 * page, and label ('Step 2 rule', 'Completion rule') its controls' names
 * where a page has several editors (each one's were 'Rule 1 field' and 'Add rule').
 */
export function RulesEditor({ rules, onChange, idp, fields = FIELDS, label = 'Rule' }) {
  const set = (i, k, v) => onChange(rules.map((r, j) => (j === i ? { ...r, [k]: v } : r)))
  const box = `.rules[data-idp="${idp}"]`
  // A removed rule takes its × button with it: the focus goes to the next
  // rule's, else the previous one's, else to Add.
  const remove = (i) => {
    onChange(rules.filter((_, j) => j !== i))
    focusAfterRemoval(`${box} .rule`, i, '.remove-rule', `${box} > .add-rule`)
  }
  return html`<div class="rules" data-idp=${idp}>
    ${rules.map((r, i) => html`<div class="rule row" role="group" aria-label=${`${label} ${i + 1}`}>
      <input list=${`${idp}-fields`} aria-label=${`${label} ${i + 1} field`} placeholder="field, e.g. properties.plan" value=${r.field} onInput=${(e) => set(i, 'field', e.target.value)} />
      <select aria-label=${`${label} ${i + 1} operator`} value=${r.operator} onChange=${(e) => set(i, 'operator', e.target.value)}>${OPERATORS.map((o) => html`<option value=${o}>${o.replace('_', ' ')}</option>`)}</select>
      ${r.operator !== 'exists' && html`<input aria-label=${`${label} ${i + 1} value`} placeholder="value" value=${r.value} onInput=${(e) => set(i, 'value', e.target.value)} />`}
      <button type="button" class="small secondary remove-rule" aria-label=${`Remove ${label.toLowerCase()} ${i + 1}`} onClick=${() => remove(i)}>×</button>
    </div>`)}
    <datalist id=${`${idp}-fields`}>${fields.map((f) => html`<option value=${f} />`)}</datalist>
    <button type="button" class="small secondary add-rule" onClick=${() => {
      onChange([...rules, { field: '', operator: 'equals', value: '' }])
      rendered().then(() => focusOn(document.querySelector(`${box} .rule:last-of-type input`)))
    }}>Add ${label.toLowerCase()}</button>
  </div>`
}
