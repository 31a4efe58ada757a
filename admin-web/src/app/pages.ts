// The console's pages: where each lives, what it is called in the navigation, and who
// sees it.
import { lazy, type ComponentType, type LazyExoticComponent } from 'react';
import type { Area } from '../session/access';

export interface PageEntry {
  path: string;
  title: string;
  area: Area;
  component: LazyExoticComponent<ComponentType>;
}

export const PAGES: PageEntry[] = [
  { path: 'chat', title: 'Chat', area: 'chat', component: lazy(() => import('../pages/chat/ChatPage')) },
  { path: 'api-keys', title: 'API keys', area: 'apiKeys', component: lazy(() => import('../pages/ApiKeysPage')) },
  { path: 'audit', title: 'Audit trail', area: 'audit', component: lazy(() => import('../pages/audit/AuditPage')) },
  { path: 'usage', title: 'Budgets and usage', area: 'usage', component: lazy(() => import('../pages/usage/UsagePage')) },
  { path: 'users', title: 'Users and roles', area: 'users', component: lazy(() => import('../pages/UsersPage')) },
  { path: 'memory', title: 'My memory', area: 'memory', component: lazy(() => import('../pages/MemoryPage')) },
  { path: 'sessions', title: 'My sessions', area: 'sessions', component: lazy(() => import('../pages/SessionsPage')) },
  { path: 'tenant', title: 'Tenant settings', area: 'tenant', component: lazy(() => import('../pages/TenantSettingsPage')) },
  { path: 'sso', title: 'Single sign-on', area: 'sso', component: lazy(() => import('../pages/SsoPage')) },
  { path: 'providers', title: 'Providers and aliases', area: 'providers', component: lazy(() => import('../pages/ProvidersPage')) },
  { path: 'profiles', title: 'Profiles', area: 'profiles', component: lazy(() => import('../pages/ProfilesPage')) },
  { path: 'plugins', title: 'Plugins', area: 'plugins', component: lazy(() => import('../pages/PluginsPage')) },
  { path: 'models', title: 'Models', area: 'models', component: lazy(() => import('../pages/ModelsPage')) },
  { path: 'tenants', title: 'Tenants', area: 'tenants', component: lazy(() => import('../pages/TenantsPage')) },
];
