{#
    Compliance band from a count of compliant weeks over weeks with a
    requirement. Compared in exact arithmetic (no division), so a rate of
    exactly 0.90 or 0.50 falls in the higher band on every engine.
#}
{% macro compliance_band(weeks_compliant, weeks_required) -%}
    case
        when coalesce({{ weeks_required }}, 0) = 0 then 'no_requirement'
        when {{ weeks_compliant }} * 100 >= {{ var('band_high_min_rate_pct') }} * {{ weeks_required }} then 'high'
        when {{ weeks_compliant }} * 100 >= {{ var('band_medium_min_rate_pct') }} * {{ weeks_required }} then 'medium'
        else 'low'
    end
{%- endmacro %}

{# weeks_compliant / weeks_required as a double, null when nothing was required. #}
{% macro compliance_rate(weeks_compliant, weeks_required) -%}
    case
        when coalesce({{ weeks_required }}, 0) > 0
            then cast({{ weeks_compliant }} as double precision) / {{ weeks_required }}
    end
{%- endmacro %}
