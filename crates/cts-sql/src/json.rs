//! Result values as JSON: integers and finite floats as numbers, strings, booleans, lists as arrays,
//! structs as objects, null as null, timestamps as RFC 3339 strings in UTC, dates as `YYYY-MM-DD`; any
//! other type as Arrow's own text of the value (decimals, intervals, binary as hex).

use chrono::{DateTime, SecondsFormat};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, TimeUnit,
    TimestampNanosecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Number, Value};

/// The value at `row` of `array`.
pub(crate) fn value(array: &dyn Array, row: usize) -> Result<Value, ArrowError> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    let number = |n: Number| Ok(Value::Number(n));
    let float = |f: f64| Ok(Number::from_f64(f).map_or(Value::Null, Value::Number));
    match array.data_type() {
        DataType::Null => Ok(Value::Null),
        DataType::Boolean => Ok(Value::Bool(array.as_boolean().value(row))),
        DataType::Int8 => number(array.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => number(array.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => number(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => number(array.as_primitive::<Int64Type>().value(row).into()),
        DataType::UInt8 => number(array.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => number(array.as_primitive::<UInt16Type>().value(row).into()),
        DataType::UInt32 => number(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => number(array.as_primitive::<UInt64Type>().value(row).into()),
        DataType::Float16 => float(array.as_primitive::<Float16Type>().value(row).to_f64()),
        DataType::Float32 => float(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Ok(Value::String(array.as_string::<i32>().value(row).to_owned())),
        DataType::LargeUtf8 => Ok(Value::String(array.as_string::<i64>().value(row).to_owned())),
        DataType::Utf8View => Ok(Value::String(array.as_string_view().value(row).to_owned())),
        DataType::List(_) => list(array.as_list::<i32>().value(row).as_ref()),
        DataType::LargeList(_) => list(array.as_list::<i64>().value(row).as_ref()),
        DataType::FixedSizeList(..) => list(array.as_fixed_size_list().value(row).as_ref()),
        DataType::Struct(fields) => {
            let columns = array.as_struct();
            let mut object = Map::new();
            for (field, column) in fields.iter().zip(columns.columns()) {
                object.insert(field.name().clone(), value(column.as_ref(), row)?);
            }
            Ok(Value::Object(object))
        }
        DataType::Dictionary(_, values) => value(cast(&array.slice(row, 1), values)?.as_ref(), 0),
        DataType::Timestamp(..) => {
            let nanos = cast(&array.slice(row, 1), &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
            let instant = DateTime::from_timestamp_nanos(nanos.as_primitive::<TimestampNanosecondType>().value(0));
            Ok(Value::String(instant.to_rfc3339_opts(SecondsFormat::AutoSi, true)))
        }
        _ => {
            let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())?;
            Ok(Value::String(formatter.value(row).to_string()))
        }
    }
}

fn list(items: &dyn Array) -> Result<Value, ArrowError> {
    (0..items.len()).map(|item| value(items, item)).collect::<Result<Vec<_>, _>>().map(Value::Array)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        BooleanArray, Date32Array, Float64Array, Int64Array, ListBuilder, StringArray, StringBuilder,
        TimestampMillisecondArray,
    };
    use serde_json::json;

    fn values(array: &dyn Array) -> Vec<Value> {
        (0..array.len()).map(|row| value(array, row).unwrap()).collect()
    }

    #[test]
    fn each_arrow_type_has_its_json_form() {
        assert_eq!(values(&Int64Array::from(vec![Some(5), None])), [json!(5), Value::Null]);
        assert_eq!(values(&Float64Array::from(vec![1.5, f64::NAN])), [json!(1.5), Value::Null]);
        assert_eq!(values(&BooleanArray::from(vec![true])), [json!(true)]);
        assert_eq!(values(&StringArray::from(vec!["a\"b"])), [json!("a\"b")]);
        let mut lists = ListBuilder::new(StringBuilder::new());
        lists.values().append_value("x");
        lists.values().append_value("y");
        lists.append(true);
        lists.append(false);
        assert_eq!(values(&lists.finish()), [json!(["x", "y"]), Value::Null]);
        let times = TimestampMillisecondArray::from(vec![1_700_000_000_123]);
        assert_eq!(values(&times), [json!("2023-11-14T22:13:20.123Z")]);
        let zoned = TimestampMillisecondArray::from(vec![1_700_000_000_000]).with_timezone("+02:00");
        assert_eq!(values(&zoned), [json!("2023-11-14T22:13:20Z")]);
        assert_eq!(values(&Date32Array::from(vec![19_000])), [json!("2022-01-08")]);
    }
}
