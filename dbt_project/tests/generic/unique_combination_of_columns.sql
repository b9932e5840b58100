{#
    The combination of columns is unique (a composite primary key). Rows with
    nulls in some of the columns are compared like values: group by treats
    null as one value, which is what a grain with an optional part (e.g.
    department_id unknown) needs.

        data_tests:
          - unique_combination_of_columns:
              arguments:
                combination_of_columns: [employee_id, week_start]
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

with

grouped as (

    select
        {% for column in combination_of_columns -%}
        {{ column }},
        {% endfor -%}
        count(*) as n_rows
    from {{ model }}
    group by
        {% for column in combination_of_columns -%}
        {{ column }}{{ "," if not loop.last }}
        {% endfor %}

)

select * from grouped
where n_rows > 1

{% endtest %}
