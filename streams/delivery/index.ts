export * from './channels/index.ts'
export {
  type Fetch,
  type SendWebhookOptions,
  sendWebhook,
  type WebhookRequestInput,
  type WebhookResult,
  webhookHeaders,
  webhookPayload,
} from './send-webhook.ts'
export {
  type SignatureHeaderInput,
  type SignWebhookInput,
  signatureHeader,
  signWebhook,
  type VerifyWebhookInput,
  verifyWebhook,
} from './signing.ts'
