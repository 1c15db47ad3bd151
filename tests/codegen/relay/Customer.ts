// Relay's conventions over the gateway's schema: @refetchable needs the Node
// interface and Query.node(id:); @connection needs Relay's PageInfo. The
// compiler only reads the tagged templates; nothing here runs.
declare function graphql(strings: TemplateStringsArray): unknown;

export const customer = graphql`
  fragment Customer_customer on Customer @refetchable(queryName: "CustomerRefetchQuery") {
    id
    name
  }
`;
