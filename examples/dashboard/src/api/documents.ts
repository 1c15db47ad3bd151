// Every GraphQL operation the dashboard sends, typed with what it returns.
import { gql } from "@urql/core";

import type {
  BillingDetails,
  BuyLicensesInput,
  CatalogPlan,
  Customer,
  Order,
  OrderPayload,
  OrderStatusEvent,
  OrderSummary,
  PageInfo,
  PaymentMethodPayload,
  Product,
  UpgradeStorageInput,
  Viewer,
} from "./types";

type Connection<T> = { edges: { cursor: string; node: T }[]; pageInfo: PageInfo };

const MONEY_FIELDS = gql`
  fragment MoneyFields on Money {
    amount
    minorUnits
    currency
  }
`;

const SUMMARY_FIELDS = gql`
  fragment SummaryFields on OrderSummary {
    lines {
      description
      quantity
      unitPrice {
        ...MoneyFields
      }
      amount {
        ...MoneyFields
      }
    }
    subtotal {
      ...MoneyFields
    }
    total {
      ...MoneyFields
    }
    billingInterval
  }
  ${MONEY_FIELDS}
`;

const ORDER_FIELDS = gql`
  fragment OrderFields on Order {
    id
    kind
    status
    summary {
      ...SummaryFields
    }
    total {
      ...MoneyFields
    }
    paymentMethod {
      id
      brand
      last4
    }
    failureReason
    clientSecret
    createdAt
    updatedAt
  }
  ${SUMMARY_FIELDS}
`;

const PAYMENT_METHOD_FIELDS = gql`
  fragment PaymentMethodFields on PaymentMethod {
    id
    brand
    last4
    expMonth
    expYear
    isPrimary
  }
`;

const PRODUCT_FIELDS = gql`
  fragment ProductFields on Product {
    id
    plan {
      id
      name
      kind
      storageGb
    }
    billingInterval
    totalLicenses
    assignedLicenses
    availableLicenses
    storageGb
    status
    currentPeriodEnd
    renewsAt
    cancelAtPeriodEnd
    scheduledLicenses
  }
`;

const USER_ERROR_FIELDS = gql`
  fragment UserErrorFields on UserError {
    field
    code
    message
  }
`;

const PAYMENT_METHOD_PAYLOAD_FIELDS = gql`
  fragment PaymentMethodPayloadFields on PaymentMethodPayload {
    paymentMethod {
      ...PaymentMethodFields
    }
    userErrors {
      ...UserErrorFields
    }
  }
  ${PAYMENT_METHOD_FIELDS}
  ${USER_ERROR_FIELDS}
`;

const ORDER_PAYLOAD_FIELDS = gql`
  fragment OrderPayloadFields on OrderPayload {
    order {
      ...OrderFields
    }
    userErrors {
      ...UserErrorFields
    }
  }
  ${ORDER_FIELDS}
  ${USER_ERROR_FIELDS}
`;

export const VIEWER = gql<{ viewer: Viewer }, Record<string, never>>`
  query Viewer {
    viewer {
      id
      email
      role
      partner {
        id
        name
      }
    }
  }
`;

export const CUSTOMERS = gql<{ customers: Connection<Customer> }, { first: number; after: string | null }>`
  query Customers($first: Int!, $after: String) {
    customers(first: $first, after: $after) {
      edges {
        cursor
        node {
          id
          name
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`;

export const PRODUCTS = gql<{ products: Product[] }, { customer: string }>`
  query Products($customer: ID!) {
    products(actingCustomer: $customer) {
      ...ProductFields
    }
  }
  ${PRODUCT_FIELDS}
`;

export const CATALOG = gql<{ catalog: CatalogPlan[] }, { customer: string }>`
  query Catalog($customer: ID!) {
    catalog(actingCustomer: $customer) {
      id
      name
      kind
      storageGb
      monthly: price(interval: MONTHLY) {
        ...MoneyFields
      }
      yearly: price(interval: YEARLY) {
        ...MoneyFields
      }
    }
  }
  ${MONEY_FIELDS}
`;

export const BILLING_DETAILS = gql<{ billingDetails: BillingDetails }, { customer: string }>`
  query BillingDetails($customer: ID!) {
    billingDetails(actingCustomer: $customer) {
      customer {
        id
        name
      }
      paymentMethods {
        ...PaymentMethodFields
      }
      primaryPaymentMethod {
        id
      }
    }
  }
  ${PAYMENT_METHOD_FIELDS}
`;

export const ORDERS = gql<{ orders: Connection<Order> }, { customer: string; first: number }>`
  query Orders($customer: ID!, $first: Int!) {
    orders(actingCustomer: $customer, first: $first) {
      edges {
        cursor
        node {
          ...OrderFields
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
  ${ORDER_FIELDS}
`;

export const LICENSE_PURCHASE_SUMMARY = gql<
  { licensePurchaseSummary: OrderSummary },
  { customer: string; input: BuyLicensesInput }
>`
  query LicensePurchaseSummary($customer: ID!, $input: BuyLicensesInput!) {
    licensePurchaseSummary(actingCustomer: $customer, input: $input) {
      ...SummaryFields
    }
  }
  ${SUMMARY_FIELDS}
`;

export const STORAGE_UPGRADE_SUMMARY = gql<
  { storageUpgradeSummary: OrderSummary },
  { customer: string; input: UpgradeStorageInput }
>`
  query StorageUpgradeSummary($customer: ID!, $input: UpgradeStorageInput!) {
    storageUpgradeSummary(actingCustomer: $customer, input: $input) {
      ...SummaryFields
    }
  }
  ${SUMMARY_FIELDS}
`;

export const ADD_PAYMENT_METHOD = gql<
  { addPaymentMethod: PaymentMethodPayload },
  { customer: string; token: string; makePrimary: boolean }
>`
  mutation AddPaymentMethod($customer: ID!, $token: String!, $makePrimary: Boolean!) {
    addPaymentMethod(actingCustomer: $customer, input: { paymentMethodToken: $token, makePrimary: $makePrimary }) {
      ...PaymentMethodPayloadFields
    }
  }
  ${PAYMENT_METHOD_PAYLOAD_FIELDS}
`;

export const SET_PRIMARY_PAYMENT_METHOD = gql<
  { setPrimaryPaymentMethod: PaymentMethodPayload },
  { customer: string; paymentMethodId: string }
>`
  mutation SetPrimaryPaymentMethod($customer: ID!, $paymentMethodId: ID!) {
    setPrimaryPaymentMethod(actingCustomer: $customer, paymentMethodId: $paymentMethodId) {
      ...PaymentMethodPayloadFields
    }
  }
  ${PAYMENT_METHOD_PAYLOAD_FIELDS}
`;

export const REMOVE_PAYMENT_METHOD = gql<
  { removePaymentMethod: PaymentMethodPayload },
  { customer: string; paymentMethodId: string }
>`
  mutation RemovePaymentMethod($customer: ID!, $paymentMethodId: ID!) {
    removePaymentMethod(actingCustomer: $customer, paymentMethodId: $paymentMethodId) {
      ...PaymentMethodPayloadFields
    }
  }
  ${PAYMENT_METHOD_PAYLOAD_FIELDS}
`;

export const BUY_LICENSES = gql<{ buyLicenses: OrderPayload }, { customer: string; input: BuyLicensesInput }>`
  mutation BuyLicenses($customer: ID!, $input: BuyLicensesInput!) {
    buyLicenses(actingCustomer: $customer, input: $input) {
      ...OrderPayloadFields
    }
  }
  ${ORDER_PAYLOAD_FIELDS}
`;

export const UPGRADE_STORAGE = gql<{ upgradeStorage: OrderPayload }, { customer: string; input: UpgradeStorageInput }>`
  mutation UpgradeStorage($customer: ID!, $input: UpgradeStorageInput!) {
    upgradeStorage(actingCustomer: $customer, input: $input) {
      ...OrderPayloadFields
    }
  }
  ${ORDER_PAYLOAD_FIELDS}
`;

/** The live order list. Sent as a plain string by the graphql-ws client (see
 * live/orderFeed.ts), so it carries its fragments along in the text. */
export const ORDER_STATUS_CHANGED = gql<
  { orderStatusChanged: OrderStatusEvent },
  { customer: string; after: string | null }
>`
  subscription OrderStatusChanged($customer: ID, $after: String) {
    orderStatusChanged(actingCustomer: $customer, after: $after) {
      cursor
      status
      occurredAt
      order {
        ...OrderFields
      }
    }
  }
  ${ORDER_FIELDS}
`;
