declare function graphql(strings: TemplateStringsArray): unknown;

export const order = graphql`
  fragment Order_order on Order @refetchable(queryName: "OrderRefetchQuery") {
    id
    status
    createdAt
    total {
      amount
      currency
    }
  }
`;
