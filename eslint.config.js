// ESLint for the whole tree: typescript-eslint's `recommended` rules, plus the type-aware rules
// that catch real bugs in a promise-heavy queue service. Every rule turned off below says why.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    // Generated output only: every source folder is linted.
    ignores: [
      'node_modules/',
      '.scratch/',
      'dist/',
      'clients/typescript/lib/',
      'models/.generated/',
      'bench/results/',
      'coverage/',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: globals.node,
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        // A `default` that handles the rest on purpose is a decision, not an oversight.
        { considerDefaultExhaustiveForUnions: true },
      ],
      '@typescript-eslint/no-unnecessary-condition': [
        'error',
        // `while (true)` loops that end by return/break are the clearest form for readers and retry loops.
        { allowConstantLoopConditions: 'only-allowed-literals' },
      ],
      // `_name` marks a parameter a callback signature requires but this code does not use.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests read the hub's JSON answers and check them field by field with expect(); typing each
      // body would restate, by hand, the very types the tests are there to check.
      '@typescript-eslint/no-explicit-any': 'off',
      // Noise in tests: fixtures set in beforeAll are typed as always present, yet afterAll must
      // cope with a beforeAll that failed (`hub?.close()`).
      '@typescript-eslint/no-unnecessary-condition': 'off',
    },
  },
  {
    // Plain JavaScript (the console in the browser, the session thread, build scripts): no
    // TypeScript program covers these files, so the type-aware rules cannot run on them.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: { ...globals.node } },
  },
  {
    files: ['api/console/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
);
