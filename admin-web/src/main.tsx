// Entry point: the query cache, the router (under /console/) and the session.
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router';
import { Code, ConnectError } from '@connectrpc/connect';
import { App } from './app/App';
import { SessionProvider } from './session/session';
import './styles.css';

const queries = new QueryClient({
  defaultOptions: {
    queries: {
      staleTime: 15_000,
      refetchOnWindowFocus: false,
      // Retrying a refusal changes nothing; retry only what may pass on a second try.
      retry: (count, error) => count < 2 && error instanceof ConnectError
        && [Code.Unavailable, Code.DeadlineExceeded, Code.Aborted].includes(error.code),
    },
  },
});

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={queries}>
        <BrowserRouter basename="/console">
          <SessionProvider>
            <App />
          </SessionProvider>
        </BrowserRouter>
      </QueryClientProvider>
    </StrictMode>,
  );
}
