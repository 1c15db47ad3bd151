declare function graphql(strings: TemplateStringsArray): unknown;

export const orders = graphql`
  fragment OrdersPage_query on Query
  @refetchable(queryName: "OrdersPagePaginationQuery")
  @argumentDefinitions(customer: { type: "ID!" }, first: { type: "Int", defaultValue: 20 }, after: { type: "String" }) {
    orders(actingCustomer: $customer, first: $first, after: $after) @connection(key: "OrdersPage_orders") {
      edges {
        node {
          id
          status
        }
      }
    }
  }
`;

export const query = graphql`
  query OrdersPageQuery($customer: ID!) {
    ...OrdersPage_query @arguments(customer: $customer)
  }
`;
