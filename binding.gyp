{
  'targets': [
    {
      'target_name': 'jbackup_native',
      'sources': ['native/jbackup_native.c', 'native/dirscan.c'],
      # BigInt N-API functions need NAPI_VERSION >= 6.
      'defines': ['NAPI_VERSION=8'],
      'cflags': ['-std=gnu11', '-Wall', '-Wextra', '-Wno-unused-parameter', '-fvisibility=hidden'],
      'conditions': [
        ['OS=="mac"', {
          'xcode_settings': {
            'GCC_C_LANGUAGE_STANDARD': 'gnu11',
            'GCC_SYMBOLS_PRIVATE_EXTERN': 'YES',
            # utimensat() is available from macOS 10.13.
            'MACOSX_DEPLOYMENT_TARGET': '10.13',
            'WARNING_CFLAGS': ['-Wall', '-Wextra', '-Wno-unused-parameter'],
          },
        }],
      ],
    },
  ],
}
