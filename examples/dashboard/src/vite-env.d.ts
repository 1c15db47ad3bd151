/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** Where the gateway runs, e.g. http://127.0.0.1:8000 (the sign-in form can change it). */
  readonly VITE_GATEWAY_URL?: string;
  /** A Stripe publishable key (pk_test_…): use Stripe.js instead of the sandbox's test cards. */
  readonly VITE_STRIPE_PUBLISHABLE_KEY?: string;
}

interface ImportMeta {
  readonly env: ImportMetaEnv;
}
