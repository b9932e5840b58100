{# The model holds exactly one row (e.g. the calendar bounds). #}
{% test exactly_one_row(model) %}

select n_rows
from (select count(*) as n_rows from {{ model }}) as counted
where n_rows <> 1

{% endtest %}
