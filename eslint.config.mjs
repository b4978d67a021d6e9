import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'data/', 'coverage/', 'voximplant/scenario.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      // Type-aware: the rules below need the types (a forgotten await on an activity or a timer).
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: {
        process: 'readonly',
        console: 'readonly',
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      // Workflow code must be deterministic and free of I/O: no Node built-ins (with or without the
      // node: prefix), no HTTP client, and activities only as types (their code runs in the worker).
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...builtinModules.map((name) => ({ name, message: 'no Node built-ins in workflow code' })),
            { name: 'axios', message: 'workflows do no I/O: call an activity' },
            {
              name: '../activities',
              message: 'activities are imported as types only',
              allowTypeImports: true,
            },
          ],
          patterns: [
            { group: ['node:*'], message: 'no Node built-ins in workflow code' },
            {
              group: ['../activities/*'],
              message: 'activities are imported as types only',
              allowTypeImports: true,
            },
          ],
        },
      ],
    },
  },
);
