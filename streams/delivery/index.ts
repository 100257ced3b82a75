export {
  type Fetch,
  type SendWebhookOptions,
  sendWebhook,
  type WebhookResult,
  webhookPayload,
} from './send-webhook.ts'
export { type SignWebhookInput, signWebhook, type VerifyWebhookInput, verifyWebhook } from './signing.ts'
