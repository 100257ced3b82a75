import { buildSchema, type GraphQLSchema } from 'graphql'

/**
 * The report API's schema. Anchore's paging shape is kept (`pageInfo { nextToken count }`,
 * `results`), so queries written for the reference port over as more roots arrive.
 */
export const reportSchema: GraphQLSchema = buildSchema(/* GraphQL */ `
  """
  One engine event as projected into the warehouse.
  """
  type Event {
    id: String!
    source: String!
    type: String!
    subject: String!
    account: String!
    level: String!
    resourceType: String!
    subtype: String!
    "RFC 3339 time of the event."
    time: String!
    "The event's data as a JSON string."
    data: String!
  }

  type PageInfo {
    "Pass back to get the next page; null on the last page."
    nextToken: String
    "Number of results on this page."
    count: Int!
  }

  type EventPage {
    pageInfo: PageInfo!
    results: [Event!]!
  }

  input EventFilter {
    "Only for admins: another account's events."
    account: String
    type: String
    id: String
    "RFC 3339 lower bound (inclusive)."
    start: String
    "RFC 3339 upper bound (exclusive)."
    end: String
  }

  type Query {
    "Engine events, newest first."
    events(filter: EventFilter, limit: Int = 100, nextToken: String): EventPage!
  }
`)
