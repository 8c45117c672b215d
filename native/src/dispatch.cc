#include "dispatch.h"

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/ivalue.h>

#include <deque>
#include <string>
#include <vector>

#include "errors.h"
#include "tensor_handle.h"

namespace {

enum class Kind {
  Tensor, Int, Float, Bool, Scalar, String, Device, IntList, FloatList, BoolList, TensorList,
  OptTensorList, Unsupported
};

struct ArgSpec {
  std::string name;
  Kind kind;
  bool optional;
  int64_t fixedLength;  // N of int[N]; a single number is repeated N times, as in PyTorch's Python API
  c10::optional<c10::IValue> defaultValue;
  std::string typeName;
};

struct Op {
  std::string name;
  c10::OperatorHandle handle;
  std::vector<ArgSpec> args;
  size_t returns;
};

// Ids are indices; a deque keeps references stable. Never destroyed (see tensor_handle.cc).
std::deque<Op>& ops = *new std::deque<Op>();

Kind kindOf(const c10::TypePtr& type) {
  using c10::TypeKind;
  switch (type->kind()) {
    case TypeKind::TensorType: return Kind::Tensor;
    case TypeKind::IntType:
    case TypeKind::SymIntType:
    case TypeKind::ScalarTypeType:
    case TypeKind::LayoutType:
    case TypeKind::MemoryFormatType: return Kind::Int;
    case TypeKind::FloatType: return Kind::Float;
    case TypeKind::BoolType: return Kind::Bool;
    case TypeKind::NumberType: return Kind::Scalar;
    case TypeKind::StringType: return Kind::String;
    case TypeKind::DeviceObjType: return Kind::Device;
    case TypeKind::ListType: {
      c10::TypePtr elem = type->expectRef<c10::ListType>().getElementType();
      if (auto opt = elem->cast<c10::OptionalType>()) {
        return opt->getElementType()->kind() == TypeKind::TensorType ? Kind::OptTensorList : Kind::Unsupported;
      }
      switch (elem->kind()) {
        case TypeKind::TensorType: return Kind::TensorList;
        case TypeKind::IntType:
        case TypeKind::SymIntType: return Kind::IntList;
        case TypeKind::FloatType: return Kind::FloatList;
        case TypeKind::BoolType: return Kind::BoolList;
        default: return Kind::Unsupported;
      }
    }
    default: return Kind::Unsupported;
  }
}

std::string where(const Op& op, const ArgSpec& a) { return op.name + " argument '" + a.name + "'"; }

// The tensor argument; where() is built only for the error (eagerly it cost more than the lookup).
const at::Tensor& tensorArg(Napi::Value v, const Op& op, const ArgSpec& a) {
  if (const at::Tensor* t = TensorHandle::Find(v)) return *t;
  return TensorHandle::From(v, where(op, a).c_str());  // not a live handle: From throws the message
}

int64_t toInt(Napi::Value v, const Op& op, const ArgSpec& a) {
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  if (!v.IsNumber()) fail(v.Env(), where(op, a) + ": expected an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d))) fail(v.Env(), where(op, a) + ": expected an integer, got " + std::to_string(d));
  return static_cast<int64_t>(d);
}

double toFloat(Napi::Value v, const Op& op, const ArgSpec& a) {
  if (!v.IsNumber()) fail(v.Env(), where(op, a) + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

Napi::Array toArray(Napi::Value v, const Op& op, const ArgSpec& a) {
  if (!v.IsArray()) fail(v.Env(), where(op, a) + ": expected an array");
  return v.As<Napi::Array>();
}

c10::IValue convert(Napi::Value v, const Op& op, const ArgSpec& a) {
  Napi::Env env = v.Env();
  if (v.IsNull() || v.IsUndefined()) {
    if (a.optional) return c10::IValue();
    fail(env, where(op, a) + ": required, got " + (v.IsNull() ? "null" : "undefined"));
  }
  switch (a.kind) {
    case Kind::Tensor: return tensorArg(v, op, a);
    case Kind::Int: return toInt(v, op, a);
    case Kind::Float: return toFloat(v, op, a);
    case Kind::Bool:
      if (!v.IsBoolean()) fail(env, where(op, a) + ": expected a boolean");
      return v.As<Napi::Boolean>().Value();
    case Kind::Scalar:
      if (v.IsBoolean()) return c10::Scalar(v.As<Napi::Boolean>().Value());
      if (v.IsNumber()) {
        double d = v.As<Napi::Number>().DoubleValue();
        // Integral JS numbers become integer scalars so integer tensors keep their dtype.
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return c10::Scalar(static_cast<int64_t>(d));
        return c10::Scalar(d);
      }
      fail(env, where(op, a) + ": expected a number");
    case Kind::String:
      if (!v.IsString()) fail(env, where(op, a) + ": expected a string");
      return v.As<Napi::String>().Utf8Value();
    case Kind::Device:
      if (!v.IsString()) fail(env, where(op, a) + ": expected a device string such as 'cpu' or 'cuda:0'");
      return c10::Device(v.As<Napi::String>().Utf8Value());
    case Kind::IntList: {
      std::vector<int64_t> out;
      if (v.IsNumber()) {
        out.assign(a.fixedLength > 0 ? a.fixedLength : 1, toInt(v, op, a));
      } else {
        Napi::Array arr = toArray(v, op, a);
        for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(toInt(arr.Get(i), op, a));
      }
      return out;
    }
    case Kind::FloatList: {
      std::vector<double> out;
      Napi::Array arr = toArray(v, op, a);
      for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(toFloat(arr.Get(i), op, a));
      return out;
    }
    case Kind::BoolList: {
      c10::List<bool> out;
      Napi::Array arr = toArray(v, op, a);
      for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(arr.Get(i).ToBoolean().Value());
      return out;
    }
    case Kind::TensorList: {
      c10::List<at::Tensor> out;
      Napi::Array arr = toArray(v, op, a);
      for (uint32_t i = 0; i < arr.Length(); i++) out.push_back(tensorArg(arr.Get(i), op, a));
      return out;
    }
    case Kind::OptTensorList: {
      c10::List<c10::optional<at::Tensor>> out;
      Napi::Array arr = toArray(v, op, a);
      for (uint32_t i = 0; i < arr.Length(); i++) {
        Napi::Value e = arr.Get(i);
        if (e.IsNull() || e.IsUndefined()) out.push_back(c10::nullopt);
        else out.push_back(tensorArg(e, op, a));
      }
      return out;
    }
    case Kind::Unsupported: break;
  }
  fail(env, where(op, a) + ": argument type " + a.typeName + " is not supported by the addon");
}

Napi::Value toJs(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return TensorHandle::Wrap(env, v.toTensor());
  if (v.isNone()) return env.Null();
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isTensorList()) {
    auto list = v.toTensorList();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(i, TensorHandle::Wrap(env, list.get(i)));
    return out;
  }
  if (v.isIntList()) {
    auto list = v.toIntList();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(i, Napi::Number::New(env, static_cast<double>(list.get(i))));
    return out;
  }
  if (v.isDoubleList()) {
    auto list = v.toDoubleList();
    Napi::Array out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(i, Napi::Number::New(env, list.get(i)));
    return out;
  }
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    Napi::Array out = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); i++) out.Set(i, toJs(env, elems[i]));
    return out;
  }
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  fail(env, "result of type " + v.tagKind() + " is not supported by the addon");
}

const Op& opFrom(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) fail(info.Env(), "call: expected an operator id");
  int64_t id = info[0].As<Napi::Number>().Int64Value();
  if (id < 0 || static_cast<size_t>(id) >= ops.size()) fail(info.Env(), "call: unknown operator id");
  return ops[id];
}

// Runs the operator and leaves its results on the returned stack.
std::vector<c10::IValue> run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Op& op = opFrom(info);
  Napi::Array positional = info.Length() > 1 && info[1].IsArray() ? info[1].As<Napi::Array>() : Napi::Array::New(env);
  Napi::Object kwargs = info.Length() > 2 && info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object();
  if (positional.Length() > op.args.size()) {
    fail(env, op.name + ": takes " + std::to_string(op.args.size()) + " arguments, got " + std::to_string(positional.Length()));
  }
  std::vector<c10::IValue> stack;
  stack.reserve(op.args.size());
  for (size_t i = 0; i < op.args.size(); i++) {
    const ArgSpec& a = op.args[i];
    Napi::Value v = env.Undefined();
    if (i < positional.Length()) v = positional.Get(i);
    if (v.IsUndefined() && !kwargs.IsEmpty() && kwargs.Has(a.name)) v = kwargs.Get(a.name);
    if (v.IsUndefined() && a.defaultValue.has_value()) {
      stack.push_back(*a.defaultValue);
      continue;
    }
    stack.push_back(convert(v, op, a));
  }
  op.handle.callBoxed(stack);
  return stack;
}

}  // namespace

Napi::Value FindOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) fail(env, "findOp: expected an operator name such as 'aten::add'");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string overload = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle.has_value()) fail(env, "unknown operator " + name + (overload.empty() ? "" : "." + overload));
  Op op{name + (overload.empty() ? "" : "." + overload), *handle, {}, 0};
  const c10::FunctionSchema& schema = handle->schema();
  for (const c10::Argument& arg : schema.arguments()) {
    c10::TypePtr type = arg.type();
    bool optional = false;
    if (auto opt = type->cast<c10::OptionalType>()) {
      optional = true;
      type = opt->getElementType();
    }
    op.args.push_back({arg.name(), kindOf(type), optional, arg.N().value_or(0), arg.default_value(), type->str()});
  }
  op.returns = schema.returns().size();
  ops.push_back(std::move(op));
  return Napi::Number::New(env, static_cast<double>(ops.size() - 1));
}

Napi::Value Call(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Op& op = opFrom(info);
  std::vector<c10::IValue> stack = run(info);
  if (op.returns == 1 && stack.size() == 1) return toJs(env, stack[0]);
  Napi::Array out = Napi::Array::New(env, stack.size());
  for (size_t i = 0; i < stack.size(); i++) out.Set(i, toJs(env, stack[i]));
  return out;
}

Napi::Value CallVoid(const Napi::CallbackInfo& info) {
  run(info);
  return info.Env().Undefined();
}

// opReturns(id) -> one letter per result: 't' tensor handle, 'l' list of handles, 'v' plain value.
// Handles are numbers, so the JS side needs this to tell a tensor result from a scalar one.
Napi::Value OpReturns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Op& op = opFrom(info);
  const auto& returns = op.handle.schema().returns();
  Napi::Array out = Napi::Array::New(env, returns.size());
  for (size_t i = 0; i < returns.size(); i++) {
    c10::TypePtr type = returns[i].type();
    if (auto opt = type->cast<c10::OptionalType>()) type = opt->getElementType();
    const char* kind = "v";
    if (type->kind() == c10::TypeKind::TensorType) kind = "t";
    else if (type->kind() == c10::TypeKind::ListType &&
             type->expectRef<c10::ListType>().getElementType()->kind() == c10::TypeKind::TensorType) kind = "l";
    out.Set(i, Napi::String::New(env, kind));
  }
  return out;
}

Napi::Value OpSchema(const Napi::CallbackInfo& info) {
  const Op& op = opFrom(info);
  std::ostringstream s;
  s << op.handle.schema();
  return Napi::String::New(info.Env(), s.str());
}
