{
  "targets": [
    {
      "target_name": "adafilter",
      "sources": [
        "src/addon.cc",
        "src/errors.cc",
        "src/tensor_handle.cc",
        "src/dispatch.cc",
        "src/data.cc",
        "src/runtime.cc",
        "src/caching_allocator.cc",
        "src/dist.cc",
        "src/op-trace.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node config.js include_dirs)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["<!@(node config.js cflags)", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter"],
      "libraries": ["<!@(node config.js ldflags)", "<!@(node config.js libraries)"]
    }
  ]
}
